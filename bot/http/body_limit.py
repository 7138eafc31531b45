"""Request bodies: each route's largest, refused before it is read, and a body that stops
arriving is not waited on.

One pure ASGI middleware in front of the whole app (a prefix lookup per request, nothing
more). A body larger than its route's limit is refused with 413 on its Content-Length,
before any route runs; streamed without one, as soon as the bytes read pass the limit.
Either way at most the limit is ever held in memory. A body whose next bytes do not come
within `read_timeout` seconds (HTTP_READ_TIMEOUT) is answered 408, so a client cannot hold
a request open by trickling its body.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Generator
from typing import Any, NamedTuple

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.http.errors import error_body

KIB = 1024

#: Largest request body per path prefix (first match wins). Slack's largest payloads are
#: modal submissions (a view of up to 100 blocks, URL-encoded); Stripe's events are a few
#: KiB; every valid /v1 request is far smaller than its limit.
V1_LIMIT = 64 * KIB
LIMITS: tuple[tuple[str, int], ...] = (
    ("/v1", V1_LIMIT),
    ("/slack/events", 1024 * KIB),
    ("/stripe/webhook", 1024 * KIB),
)
#: Every other route (pages, /healthz, OAuth redirects) takes no body worth the name.
DEFAULT_LIMIT = 16 * KIB
_CLOSE = {"Connection": "close"}  # the rest of a refused body is not read


def limit_for(path: str) -> int:
    for prefix, limit in LIMITS:
        if path.startswith(prefix):
            return limit
    return DEFAULT_LIMIT


def declared_refusal(headers: list[tuple[bytes, bytes]], limit: int) -> Refusal | None:
    """The refusal of a request whose Content-Length is not a number or is over `limit`."""
    for name, value in headers:
        if name == b"content-length":
            declared = int(value) if value.isdigit() else -1
            if declared < 0:
                return Refusal(400, "bad_request", "Content-Length is not a number.")
            if declared > limit:
                return Refusal(413, "body_too_large", _too_large(limit))
    return None


async def receive_within(receive: Receive, seconds: float) -> Message:
    """The next message of a request, or 408 when its bytes stop arriving for `seconds`.

    Nearly always the message is there already (a small body comes in the packet that
    carried the headers): then it is taken at once, and no timer is set for it."""
    steps = receive().__await__()
    try:
        waiting_on = steps.send(None)
    except StopIteration as there:
        return there.value
    try:
        async with asyncio.timeout(seconds):
            return await _Resumed(steps, waiting_on)
    except TimeoutError:
        raise StarletteHTTPException(
            408, f"The request body stopped arriving for {seconds:g} s.", _CLOSE
        ) from None


class _Resumed:
    """An await already stepped once, to be finished by its task (what `await` would have
    done had it not been stepped): `waiting_on` is what its first step yielded."""

    def __init__(self, steps: Generator[Any, Any, Message], waiting_on: Any) -> None:
        self.steps, self.waiting_on = steps, waiting_on

    def __await__(self) -> Generator[Any, Any, Message]:
        steps, yielded = self.steps, self.waiting_on
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                steps.close()
                raise
            except BaseException as exc:  # a cancellation (the timeout's) goes to it
                try:
                    yielded = steps.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    yielded = steps.send(sent)
                except StopIteration as done:
                    return done.value


def counted(message: Message, seen: int, limit: int) -> int:
    """The body bytes seen once `message` is read, or 413 when that passes `limit`."""
    seen += len(message.get("body", b""))
    if seen > limit:
        raise StarletteHTTPException(413, _too_large(limit), _CLOSE)
    return seen


class BodyLimits:
    """Refuse bodies over their route's limit (413) and bodies that stall (408)."""

    def __init__(self, app: ASGIApp, read_timeout: float) -> None:
        self.app, self.read_timeout = app, read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["path"])
        refusal = declared_refusal(scope["headers"], limit)
        if refusal is not None:
            await refuse(send, refusal)
            return
        seen = 0
        complete = False

        async def limited() -> Message:
            nonlocal seen, complete
            if complete:  # after the body: waiting for a disconnect, which may take long
                return await receive()
            message = await receive_within(receive, self.read_timeout)
            if message["type"] == "http.request":
                seen = counted(message, seen, limit)
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        await self.app(scope, limited, send)


def _too_large(limit: int) -> str:
    return f"The request body is larger than {limit} bytes, this route's limit."


class Refusal(NamedTuple):
    status: int
    code: str
    message: str


async def refuse(send: Send, refusal: Refusal) -> None:
    """Answer `refusal` and close the connection: the rest of the body is not read."""
    body = json.dumps(error_body(refusal.code, refusal.message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": refusal.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
