"""A request id for every HTTP request, one log line per request, and the charge latency.

Pure ASGI, in front of the whole app. The id is the client's `X-Request-Id` when it is a
safe token (ledger/tracing.py says which), else a new one; it is current while the
request runs (so the journal entries and outbox messages it writes carry it, and every log
line says it) and returned in the response's `X-Request-Id`. When the response is done it
logs `method path status duration_ms` (uvicorn's access log is off: this line replaces it)
and, for a charge route, observes the charge latency (bot/metrics.py).

The hot /v1 routes (bot/http/api/fast_routes.py) are served in front of this middleware and
do the same with `request_id_of` and `request_done`; a request they hand on to the app says
so in its scope (`FRONT_ID`), and this middleware then leaves the id and the line to them.

Charges are the hot path: their line is logged at DEBUG (INFO when the answer is a 5xx), as
a JSON line costs a tenth of a charge and the charge metrics already count every answer by
outcome and latency; LOG_LEVEL=debug shows them. Every other request logs at INFO.
"""

from __future__ import annotations

import itertools
import logging
import os
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import metrics
from ledger.tracing import accepted, request_id_var

log = logging.getLogger("creditbot.http")
HEADER = b"x-request-id"
#: Scope key of the request id the hot routes' front took (and will log) for a request it
#: hands on to the app.
FRONT_ID = "creditbot.request_id"


class _Ids:
    """New request ids: 32 hex characters, as `ledger.tracing.new_request_id` makes, but a
    random half drawn once per process and a counted half (a uuid4 per request cost more
    than the rest of this middleware). A forked worker draws its own half."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.prefix, self.count = os.urandom(8).hex(), itertools.count()

    def new(self) -> str:
        return f"{self.prefix}{next(self.count) & 0xFFFFFFFFFFFFFFFF:016x}"


_ids = _Ids()
new_request_id = _ids.new


def charge_route(method: str, path: str) -> str | None:
    """The charge route a request is on (a label of the latency histogram), or None."""
    if method != "POST" or not path.startswith("/v1/"):
        return None
    if path == "/v1/messages":
        return "messages"
    if path == "/v1/calls":
        return "call_start"
    if path.startswith("/v1/calls/") and path.endswith("/minutes"):
        return "call_minute"
    return None


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The request's id: the client's X-Request-Id when it is a safe token, else a new one."""
    for name, value in headers:
        if name == HEADER:
            return accepted(value.decode("latin-1")) or new_request_id()
    return new_request_id()


class AnswerWithId:
    """`send` for a request: adds its X-Request-Id to the answer's headers and keeps the
    answer's status (500, what the client gets, until an answer starts)."""

    def __init__(self, send: Send, raw_id: bytes) -> None:
        self.send, self.raw_id, self.status = send, raw_id, 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            message["headers"] = [*message.get("headers", ()), (HEADER, self.raw_id)]
        await self.send(message)


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or FRONT_ID in scope:
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope["headers"])
        answer = AnswerWithId(send, request_id.encode())
        start = time.perf_counter()

        # Set and reset directly (not `request_scope`): this runs for every request.
        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, answer)
        finally:
            try:
                request_done(
                    scope["method"], scope["path"], answer.status, time.perf_counter() - start
                )
            finally:
                request_id_var.reset(token)


def request_done(method: str, path: str, status: int, seconds: float) -> None:
    """The charge latency, and the request's log line (while its id is current)."""
    route = charge_route(method, path)
    level = logging.INFO
    if route is not None:
        metrics.charge_seconds(route).observe(seconds)
        if status < 500:
            level = logging.DEBUG
    if log.isEnabledFor(level):
        log.log(
            level,
            "%s %s %s %.1f ms",
            method,
            path,
            status,
            seconds * 1000,
            extra={"method": method, "path": path, "status": status,
                   "duration_ms": round(seconds * 1000, 2)},
        )  # fmt: skip
