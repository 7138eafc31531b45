"""Serving the app under uvicorn: one process, or several worker processes, each with the
connection limits of bot/http/connections.py.

uvicorn binds the shared socket of its workers without naming TCP as its protocol, so
asyncio does not turn on TCP_NODELAY for the connections the workers accept. Every
response then waits ~40 ms for the client's delayed ACK between its headers and its body.
`ServeConfig` binds the socket as TCP, then hands it to uvicorn's worker supervisor.
"""

from __future__ import annotations

import inspect
import shutil
import socket
import tempfile
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from bot import metrics
from bot.config import Settings
from bot.http.connections import GuardedConfig, connection_limit

#: Import string of the app factory the workers call (each builds its own engine and pool).
APP_FACTORY = "bot.http.serving:worker_app"


def worker_app() -> FastAPI:
    """One worker's app: its logging set up like the parent's (bot/logs.py), then the app."""
    from bot.config import get_settings
    from bot.http.app import create_app
    from bot.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    return create_app()


class ServeConfig(GuardedConfig):
    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            tcp = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
            tcp.set_inheritable(True)
            return tcp
        return sock


def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    workers: int = 1,
    app: FastAPI | str | None = None,
    log_level: str = "info",
) -> None:
    """Serve `app` (or, with several `workers`, one app per process) on host:port until
    stopped. uvicorn's access log is off: creditbot's own line per request replaces it
    (bot/http/request_ids.py). (bench/http_floor.py serves its bare app through this too,
    so the floor it measures is this stack.)"""
    options = {
        "read_timeout": settings.http_read_timeout,
        "max_connections": connection_limit(settings.http_max_connections),
        "log_level": log_level,
        # Logging is creditbot's (bot/logs.py), and its per-request line replaces uvicorn's.
        "log_config": None,
        "access_log": False,
    }
    if workers <= 1 and app is not None:
        uvicorn.Server(ServeConfig(app, host=host, port=port, **options)).run()  # type: ignore[arg-type]
        return
    # Every worker writes its metrics where whichever answers /metrics adds them up.
    metrics_dir = metrics.prepare_multiprocess(Path(tempfile.gettempdir()))
    try:
        _serve_workers(host, port, workers, options)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve_workers(host: str, port: int, workers: int, options: dict[str, object]) -> None:
    config = ServeConfig(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **options,  # type: ignore[arg-type]
    )
    sock = config.bind_socket()
    if "target" in inspect.signature(Multiprocess).parameters:  # uvicorn < 0.36
        server = uvicorn.Server(config)
        Multiprocess(config, target=server.run, sockets=[sock]).run()  # type: ignore[call-arg]
    else:
        Multiprocess(config, sockets=[sock]).run()
