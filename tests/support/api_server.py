"""A real `creditbot serve` process on a free loopback port, for crash tests and benchmarks."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def creditbot(*args: str, database_url: str, **kw: object) -> subprocess.CompletedProcess:
    """Run the `creditbot` CLI as a subprocess against `database_url`."""
    env = {**os.environ, "DATABASE_URL": database_url, "RUN_SCHEDULER": "false"}
    return subprocess.run(
        [_cli(), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        **kw,  # type: ignore[arg-type]
    )


def _cli() -> str:
    candidate = Path(sys.executable).with_name("creditbot")
    return str(candidate) if candidate.exists() else "creditbot"


class _PortTaken(RuntimeError):
    pass


class Server:
    """`creditbot serve` as a child process. `kill()` sends SIGKILL: no clean shutdown."""

    def __init__(
        self,
        database_url: str,
        *,
        port: int | None = None,
        workers: int = 1,
        env: dict[str, str] | None = None,
        open_files: int | None = None,
    ) -> None:
        self.database_url = database_url
        self.port = port or free_port()
        self._port_given = port is not None
        self.workers = workers
        self.env = env or {}  # more environment variables
        self.open_files = open_files  # a hard limit on the server's open files
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self._new_log()

    def _new_log(self) -> Path:
        # A file of its own, never one named for the port alone: ports come round again, and
        # a server that appended to an earlier run's log would show a test that run's lines.
        fd, path = tempfile.mkstemp(prefix=f"creditbot-serve-{self.port}-", suffix=".log")
        os.close(fd)
        return Path(path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Server:
        # A port chosen here is free when chosen, not reserved: another test process may
        # bind it first. Then the server exits saying so and starts again on another port.
        for _ in range(4):
            try:
                return self._start(timeout)
            except _PortTaken:
                if self._port_given:
                    raise
                self.port = free_port()
                self.log = self._new_log()
        return self._start(timeout)

    def _start(self, timeout: float) -> Server:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "RUN_SCHEDULER": "false",
            "PORT": str(self.port),
            **self.env,
        }
        log = self.log.open("ab")
        args = [_cli(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.workers > 1:
            args += ["--workers", str(self.workers)]
        self.process = subprocess.Popen(
            args,
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=self._limit_open_files if self.open_files else None,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                said = self.log.read_text()[-2000:]
                if "address already in use" in said.lower():
                    raise _PortTaken(said)
                raise RuntimeError(f"creditbot serve exited: {said}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"creditbot serve did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def _limit_open_files(self) -> None:  # in the child, before exec
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))

    def kill(self) -> None:
        """SIGKILL the server (and its workers, which share its process group)."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
