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

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.http.errors import error_body

KIB = 1024

#: Largest request body per path prefix (first match wins). Slack's largest payloads are
#: modal submissions (a view of up to 100 blocks, URL-encoded); Stripe's events are a few
#: KiB; every valid /v1 request is far smaller than its limit.
LIMITS: tuple[tuple[str, int], ...] = (
    ("/v1", 64 * KIB),
    ("/slack/events", 1024 * KIB),
    ("/stripe/webhook", 1024 * KIB),
)
#: Every other route (pages, /healthz, OAuth redirects) takes no body worth the name.
DEFAULT_LIMIT = 16 * KIB
_CLOSE = {"Connection": "close"}  # the rest of a refused body is not read


def limit_for(path: str) -> int:
    return next((limit for prefix, limit in LIMITS if path.startswith(prefix)), DEFAULT_LIMIT)


class BodyLimits:
    """Refuse bodies over their route's limit (413) and bodies that stall (408)."""

    def __init__(self, app: ASGIApp, read_timeout: float) -> None:
        self.app, self.read_timeout = app, read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["path"])
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = int(value) if value.isdigit() else -1
                if declared < 0:
                    await _refuse(send, 400, "bad_request", "Content-Length is not a number.")
                    return
                if declared > limit:
                    await _refuse(send, 413, "body_too_large", _too_large(limit))
                    return
        seen = 0
        complete = False

        async def limited() -> Message:
            nonlocal seen, complete
            if complete:  # after the body: waiting for a disconnect, which may take long
                return await receive()
            try:
                async with asyncio.timeout(self.read_timeout):
                    message = await receive()
            except TimeoutError:
                raise StarletteHTTPException(
                    408, f"The request body stopped arriving for {self.read_timeout:g} s.", _CLOSE
                ) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise StarletteHTTPException(413, _too_large(limit), _CLOSE)
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        await self.app(scope, limited, send)


def _too_large(limit: int) -> str:
    return f"The request body is larger than {limit} bytes, this route's limit."


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
