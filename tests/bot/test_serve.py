"""`creditbot db upgrade` then `creditbot serve`: the service starts on a fresh SQLite file
and /healthz answers, as `make run` does."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_healthz_on_a_fresh_sqlite_file(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'creditbot.db'}",
        "RUN_SCHEDULER": "false",
    }
    subprocess.run(
        [BIN / "creditbot", "db", "upgrade"], env=env, check=True, capture_output=True, cwd=tmp_path
    )
    port = free_port()
    server = subprocess.Popen(
        [BIN / "creditbot", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, "creditbot serve exited"
                assert time.monotonic() < deadline, "no answer from /healthz in 30 s"
                time.sleep(0.2)
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok", "database": "sqlite"}
    finally:
        server.terminate()
        server.wait(timeout=10)
