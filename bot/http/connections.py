"""The connections `creditbot serve` holds: bounded in number, in the time a request's
headers may take, and in their size.

uvicorn gives a new connection no deadline at all until its first response (its keep-alive
timeout starts after one, and any byte received cancels it), and httptools takes headers of
any size. So a client that opens connections and sends its headers slowly, or never, holds
them forever: 20,800 of them used up every file descriptor and /healthz went dark.
uvicorn's `limit_concurrency` does not help: it counts idle connections too and answers 503
to every new request, /healthz included, once enough are open. Here, instead:

- a connection whose request headers are not all in `read_timeout` seconds after it opened,
  or after its last response, is closed;
- request headers over MAX_HEADER_BYTES are answered 431 and the connection closed;
- past `max_connections`, a new connection closes the one that has waited longest for its
  headers (an idle or slow client), so idle connections cannot keep a real request out; when
  every connection is busy with a request, the new one is closed instead.

`GuardedConfig` carries the two numbers to the protocol (and to `--workers` processes).
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from bot.http.errors import error_body

try:  # what uvicorn picks when it is installed (uvicorn[standard])
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is a dependency of uvicorn[standard]
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

log = logging.getLogger(__name__)

#: Largest request head (request line and headers). Slack's and Stripe's are ~2 KiB.
MAX_HEADER_BYTES = 64 * 1024
#: Files a server process needs besides its connections (database, log, pool, threads).
RESERVED_FILES = 128
_WARN_EVERY_SECONDS = 60.0


class GuardedConfig(uvicorn.Config):
    """uvicorn's config, with the limits the guarded protocols read."""

    def __init__(self, *args: Any, read_timeout: float, max_connections: int, **kw: Any) -> None:
        kw.setdefault("http", protocol_class())
        kw.setdefault("h11_max_incomplete_event_size", MAX_HEADER_BYTES)
        super().__init__(*args, **kw)
        self.read_timeout = read_timeout
        self.max_connections = max_connections


class _Guard:
    """What both guarded protocols add to uvicorn's (a mixin: the protocol comes after)."""

    config: GuardedConfig
    connections: set[Any]
    transport: asyncio.Transport
    cycle: Any
    loop: asyncio.AbstractEventLoop
    _last_warning = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._head_bytes = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._await_headers()
        if len(self.connections) > self.config.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        waiting = self.waiting_for_headers()
        super().data_received(data)  # type: ignore[misc]
        if not waiting or self.transport.is_closing():
            return
        if not self.waiting_for_headers():
            self._head_bytes = 0  # the headers are in: the deadline no longer matters
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEADER_BYTES:
            self._refuse_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._await_headers()

    def waiting_for_headers(self) -> bool:
        """No request of this connection is being answered: it is idle, or its next
        request's headers are on their way."""
        return self.cycle is None or self.cycle.response_complete

    def _await_headers(self) -> None:
        self._cancel_deadline()
        self._head_bytes = 0
        self.waiting_since = time.monotonic()
        self._deadline = self.loop.call_later(self.config.read_timeout, self._on_deadline)

    def _cancel_deadline(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()  # type: ignore[union-attr]
            self._deadline = None

    def _on_deadline(self) -> None:
        self._deadline = None
        if self.waiting_for_headers() and not self.transport.is_closing():
            self.transport.close()  # no request started in time: nothing to answer

    def _make_room(self) -> None:
        waiting = [
            c
            for c in self.connections
            if isinstance(c, _Guard) and c is not self and c.waiting_for_headers()
        ]
        _warn_full(self.config.max_connections)
        if not waiting:
            self.transport.close()
            return
        min(waiting, key=lambda c: c.waiting_since).transport.close()

    def _refuse_headers(self) -> None:
        # No request exists yet to answer through the app: the 431 is written here.
        body = json.dumps(
            error_body("headers_too_large", f"Request headers over {MAX_HEADER_BYTES} bytes.")
        ).encode()
        head = (
            "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()


def _warn_full(limit: int) -> None:
    now = time.monotonic()
    if now - _Guard._last_warning >= _WARN_EVERY_SECONDS:
        _Guard._last_warning = now
        log.warning("%d connections open: closing those idle the longest to admit new ones", limit)


class GuardedH11Protocol(_Guard, H11Protocol):
    """uvicorn's pure-Python HTTP/1.1 protocol, guarded (h11 bounds the head itself)."""


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(_Guard, HttpToolsProtocol):
        """uvicorn's httptools protocol, guarded."""


def protocol_class() -> type[asyncio.Protocol]:
    """httptools' protocol when it is installed (uvicorn's own choice), else h11's."""
    return GuardedHttpToolsProtocol if HttpToolsProtocol is not None else GuardedH11Protocol


def open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (children inherit
    it); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit above %d", soft)
    return soft


def connection_limit(wanted: int) -> int:
    """`wanted` connections, or fewer when the open-file limit leaves less room."""
    room = open_file_limit() - RESERVED_FILES
    if room < wanted:
        log.warning("open-file limit leaves room for %d connections, not %d", max(room, 16), wanted)
    return max(16, min(wanted, room))
