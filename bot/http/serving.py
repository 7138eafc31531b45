"""Serving the app with several uvicorn worker processes.

uvicorn binds the shared socket of its workers without naming TCP as its protocol, so
asyncio does not turn on TCP_NODELAY for the connections the workers accept. Every
response then waits ~40 ms for the client's delayed ACK between its headers and its body.
This binds the socket as TCP, then hands it to uvicorn's worker supervisor.
"""

from __future__ import annotations

import inspect
import socket

import uvicorn
from uvicorn.supervisors import Multiprocess

#: Import string of the app factory the workers call (each builds its own engine and pool).
APP_FACTORY = "bot.http.app:create_app"


def uvicorn_options(log_level: str = "info", access_log: bool = False) -> dict[str, object]:
    """The uvicorn stack every `creditbot serve` runs on (and bench/http_floor.py, so the
    floor it measures is the same stack): uvloop and httptools, named rather than left to
    "auto" so a missing one fails loudly instead of silently serving slower. No access log
    by default: a line per charge costs a tenth of the request; a proxy in front logs."""
    return {"loop": "uvloop", "http": "httptools", "log_level": log_level, "access_log": access_log}


class _TcpConfig(uvicorn.Config):
    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            tcp = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
            tcp.set_inheritable(True)
            return tcp
        return sock


def serve_workers(
    host: str, port: int, workers: int, log_level: str = "info", access_log: bool = False
) -> None:
    """Run `workers` processes of the app on host:port until stopped."""
    config = _TcpConfig(
        APP_FACTORY, factory=True, host=host, port=port, workers=workers,
        **uvicorn_options(log_level, access_log),  # type: ignore[arg-type]
    )  # fmt: skip
    sock = config.bind_socket()
    if "target" in inspect.signature(Multiprocess).parameters:  # uvicorn < 0.36
        server = uvicorn.Server(config)
        Multiprocess(config, target=server.run, sockets=[sock]).run()  # type: ignore[call-arg]
    else:
        Multiprocess(config, sockets=[sock]).run()
