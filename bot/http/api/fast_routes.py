"""The hot /v1 routes served below FastAPI's request machinery.

POST /v1/messages, POST /v1/calls and POST /v1/calls/{call_id}/minutes are the product's
hot loop: every message an agent sends and every call minute waits for one of these
answers, and FastAPI's routing, dependency injection and request validation cost more CPU
than the charge itself (docs/performance.md). GET /v1/balance, which runtimes poll, comes
along at no extra cost. `FastRoutes`, a pure ASGI layer in front of the app's whole
middleware stack (`install`), serves a well-formed request itself, doing in one place what
the layers it stands in front of do for every other route:

    the request id (bot/http/request_ids.py: the client's or a new one, current while the
       request runs, in the answer's X-Request-Id, one log line and the charge latency)
    -> the body (read within its limits, as on every route: 400, 413, 408;
       bot/http/body_limit.py)
    -> the key (401 whatever the body; from the KeyCache, as ApiKeyRoute does)
    -> Content-Type, and the Idempotency-Key or call id, checked as FastAPI accepts them
    -> the route's own model: `model_validate_json` on the bytes
    -> the route's own work (messages.charge_message, calls.call_started,
       calls.minute_charged, balance.balance_answer): the same ApiKeyAccount calls, the
       same answers

Anything it does not accept there -- a body that does not validate, a header missing or
malformed, another content type -- goes, body and all, through the app's middleware stack to
the FastAPI route (under the same request id), which answers
it exactly as it always did (its error bodies, the revoked-key check before a 422), so the
two can differ only in what they accept, never in what they answer
(tests/bot/test_fast_routes.py). The FastAPI routes also remain the OpenAPI description.
An error the work raises (a revoked key, an unknown agent, an idempotency conflict, a busy
database) is answered by the app's own exception handlers, looked up as Starlette's
ExceptionMiddleware looks them up; any other (a bug) is answered by the app's 500 handler
and raised on for uvicorn to log, as Starlette's ServerErrorMiddleware does for any route.
"""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from fastapi import FastAPI
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.http.api.authentication import ApiKeyAccount, account_of
from bot.http.api.balance import balance_answer
from bot.http.api.calls import call_started, minute_charged
from bot.http.api.dependencies import MAX_KEY_LENGTH
from bot.http.api.errors import PREFIX
from bot.http.api.messages import charge_message
from bot.http.api.schemas import CallMinute, CallStart, MessageCharge
from bot.http.body_limit import V1_LIMIT, counted, declared_refusal, receive_within, refuse
from bot.http.request_ids import (
    FRONT_ID,
    HEADER,
    AnswerWithId,
    request_done,
    request_id_of,
)
from ledger.tracing import request_id_var

#: An Idempotency-Key FastAPI accepts (dependencies.IdempotencyKey: 1 to 128 printable
#: ASCII characters, no spaces); anything else is the FastAPI route's to refuse.
_IDEMPOTENCY_KEY = re.compile(rb"[\x21-\x7e]{1,%d}" % MAX_KEY_LENGTH)
#: A call id FastAPI accepts in the path (dependencies.CallIdPath).
_CALL_ID = re.compile(r"[0-9a-f]{1,64}")


class FastRoute(NamedTuple):
    """A hot route: its body's model (None: it reads no body), whether it takes an
    Idempotency-Key, and its work, `serve(account, body, idempotency key or call id)`."""

    model: type[BaseModel] | None
    keyed: bool
    serve: Callable[[ApiKeyAccount, Any, str], Awaitable[Response]]


MESSAGES = FastRoute(MessageCharge, True, charge_message)
CALL_START = FastRoute(CallStart, True, call_started)
CALL_MINUTE = FastRoute(CallMinute, False, minute_charged)
BALANCE = FastRoute(None, False, balance_answer)
_CALLS = f"{PREFIX}/calls"
_MINUTES = "/minutes"


def fast_route(method: str, path: str) -> tuple[FastRoute, str] | None:
    """The hot route of a request, with its call id ("" for none), or None."""
    if method == "GET":
        return (BALANCE, "") if path == f"{PREFIX}/balance" else None
    if method != "POST":
        return None
    if path == f"{PREFIX}/messages":
        return MESSAGES, ""
    if path == _CALLS:
        return CALL_START, ""
    if path.startswith(_CALLS) and path.endswith(_MINUTES):
        call_id = path[len(_CALLS) + 1 : -len(_MINUTES)]
        if path[len(_CALLS)] == "/" and _CALL_ID.fullmatch(call_id):
            return CALL_MINUTE, call_id
    return None


def is_json(content_type: bytes | None) -> bool:
    """Whether FastAPI parses a body of this Content-Type as JSON: application/json, with
    or without parameters (its `application/*+json` cousins go the FastAPI route's way)."""
    if content_type is None:
        return False
    return content_type.partition(b";")[0].strip().lower() == b"application/json"


def install(app: FastAPI, read_timeout: float) -> None:
    """Put the hot routes in front of `app`'s middleware stack, built now: after this the
    app takes no more middleware or exception handlers."""
    app.middleware_stack = FastRoutes(app.build_middleware_stack(), app, read_timeout)


class FastRoutes:
    """The hot routes in front of `app`, the whole middleware stack of `owner`; every other
    request passes through."""

    def __init__(self, app: ASGIApp, owner: FastAPI, read_timeout: float) -> None:
        self.app, self.owner, self.read_timeout = app, owner, read_timeout
        self._handlers: tuple[dict[int, Any], dict[Any, Any]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        if scope["type"] == "http":
            found = fast_route(scope["method"], scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope["headers"])
        token = request_id_var.set(request_id)
        status = 500  # what the client gets if answering fails before it starts
        start = time.perf_counter()
        try:
            status = await self._answer(scope, receive, send, request_id.encode(), found)
        finally:
            try:
                request_done(scope["method"], scope["path"], status, time.perf_counter() - start)
            finally:
                request_id_var.reset(token)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        raw_id: bytes,
        found: tuple[FastRoute, str],
    ) -> int:
        """Answer the request; its status."""
        refusal = declared_refusal(scope["headers"], V1_LIMIT)
        if refusal is not None:
            await refuse(AnswerWithId(send, raw_id), refusal)
            return refusal.status
        body = b""
        response: Response | None
        try:
            try:
                body = await self._body(receive)
                response = await self._charge(scope, body, *found)
            except Exception as exc:
                response = await self._error_answer(scope, receive, exc)
        except Exception as exc:
            # A bug: the app's 500 answer, then raised on for uvicorn to log.
            await self._answer_crash(scope, receive, AnswerWithId(send, raw_id), exc)
            raise
        if response is None:
            return await self._hand_on(scope, body, receive, send, raw_id)
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [*response.raw_headers, (HEADER, raw_id)],
            }
        )
        await send({"type": "http.response.body", "body": response.body})
        return response.status_code

    async def _body(self, receive: Receive) -> bytes:
        """The whole request body, as Starlette's `Request.body()` reads it, within the
        /v1 routes' limits (bot/http/body_limit.py): 413 past them, 408 when it stalls."""
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive_within(receive, self.read_timeout)
            if message["type"] != "http.request":
                raise ClientDisconnect()
            seen = counted(message, seen, V1_LIMIT)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _hand_on(
        self, scope: Scope, body: bytes, receive: Receive, send: Send, raw_id: bytes
    ) -> int:
        """Hand the request, body and all, to the app's middleware stack and its FastAPI
        route, under this request id; the status it answered."""
        answer = AnswerWithId(send, raw_id)
        await self.app({**scope, FRONT_ID: raw_id.decode()}, _replay(body, receive), answer)
        return answer.status

    async def _charge(
        self, scope: Scope, body: bytes, route: FastRoute, call_id: str
    ) -> Response | None:
        """The answer, or None for the FastAPI route to give it."""
        authorization = key = content_type = None
        for name, value in scope["headers"]:
            # The first of each, as Starlette's Headers.get reads them.
            if name == b"authorization":
                authorization = value if authorization is None else authorization
            elif name == b"idempotency-key":
                key = value if key is None else key
            elif name == b"content-type":
                content_type = value if content_type is None else content_type
        authorization_text = "" if authorization is None else authorization.decode("latin-1")
        account = await account_of(self.owner.state.api, authorization_text)
        if route.model is None:
            return await route.serve(account, None, call_id)
        if not is_json(content_type):
            return None
        if route.keyed and (key is None or not _IDEMPOTENCY_KEY.fullmatch(key)):
            return None
        try:
            valid = route.model.model_validate_json(body)
        except ValidationError:
            return None
        return await route.serve(account, valid, key.decode("ascii") if route.keyed else call_id)

    async def _error_answer(self, scope: Scope, receive: Receive, exc: Exception) -> Response:
        """The app's answer to `exc` (its exception handlers), or `exc` raised again."""
        status_handlers, handlers = self._exception_handlers()
        handler = None
        if isinstance(exc, HTTPException):
            handler = status_handlers.get(exc.status_code)
        if handler is None:
            handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
        if handler is None:
            raise exc
        answer = handler(Request(scope, receive), exc)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer

    def _exception_handlers(self) -> tuple[dict[int, Any], dict[Any, Any]]:
        """The handlers ExceptionMiddleware holds: the app's, but for the 500 one
        (`_answer_crash` runs that, as Starlette's ServerErrorMiddleware would)."""
        if self._handlers is None:
            own = self.owner.exception_handlers
            status = {k: v for k, v in own.items() if isinstance(k, int) and k != 500}
            handlers = {
                k: v for k, v in own.items() if not isinstance(k, int) and k is not Exception
            }
            self._handlers = (status, handlers)
        return self._handlers

    async def _answer_crash(
        self, scope: Scope, receive: Receive, send: Send, exc: Exception
    ) -> None:
        """The app's 500 answer to a bug, as Starlette's ServerErrorMiddleware gives it."""
        own = self.owner.exception_handlers
        handler = own.get(500) or own.get(Exception)
        if handler is None:
            return  # uvicorn answers 500 itself
        answer = handler(Request(scope, receive), exc)
        if inspect.isawaitable(answer):
            answer = await answer
        await answer(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for the FastAPI route: the body already read, then what the client sends."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
