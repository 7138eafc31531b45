"""`creditbot serve --workers 2`: whichever worker answers /metrics counts every worker's
charges (prometheus_client's multiprocess mode), and the server logs JSON lines with the
request id when its stderr is not a terminal (a charge's at DEBUG)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ledger.api_keys import create_key
from ledger.db import make_engine, make_session_factory, transaction
from tests.support.factories import story
from tests.support.payments_support import free_port

BIN = Path(sys.executable).parent
TOKEN = "workers-metrics-token"


def _charges(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "creditbot_charges_total" and sample.labels == {
                "unit": "message", "outcome": "allowed"}:  # fmt: skip
                return sample.value
    return 0.0


def test_two_workers_count_every_charge_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'creditbot.db'}"
    # LOG_LEVEL=debug: a charge's request line is DEBUG (the hot path, bot/http/request_ids.py).
    env = {**os.environ, "DATABASE_URL": url, "RUN_SCHEDULER": "false", "METRICS_TOKEN": TOKEN,
           "LOG_FORMAT": "auto", "LOG_LEVEL": "debug"}  # fmt: skip
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    subprocess.run([BIN / "creditbot", "db", "upgrade"], env=env, check=True,
                   capture_output=True, cwd=tmp_path)  # fmt: skip
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    ids = story(sessions, plan=1000)
    secret = transaction(sessions, lambda s: create_key(s, ids["account"], "t")).secret
    engine.dispose()
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [BIN / "creditbot", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "no answer from /healthz in 60 s"
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {secret}"}
        # A new connection per request, so both workers take some.
        for n in range(12):
            r = httpx.post(f"{base}/v1/messages", json={"agent_id": ids["a"], "direction": "inbound"},
                           headers={**headers, "Idempotency-Key": f"k{n}",
                                    "X-Request-Id": f"w-{n}"}, timeout=10)  # fmt: skip
            assert r.status_code == 200 and r.headers["x-request-id"] == f"w-{n}"
        for _ in range(4):  # any worker's answer counts all twelve
            scraped = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                                timeout=10)  # fmt: skip
            assert scraped.status_code == 200
            assert _charges(scraped.text) == 12
    finally:
        server.terminate()
        server.wait(timeout=20)
    lines = []
    for line in (tmp_path / "serve.log").read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    served = {x["request_id"] for x in lines if x.get("path") == "/v1/messages"}
    assert served == {f"w-{n}" for n in range(12)}, "one JSON line per request, with its id"
