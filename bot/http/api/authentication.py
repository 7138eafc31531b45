"""Who is asking: the API key of a /v1 request, checked before anything else about it.

Every /v1 route is an `ApiKeyRoute` (the hot routes are also served below FastAPI by
fast_routes.py, which checks the key first with `account_of`, as here). Once the body has
arrived (within its route's size and time limits, bot/http/body_limit.py) and before
FastAPI parses or validates it, the key is looked up -- in memory when this process has
seen it (`ledger.api_keys.KeyCache`), else in the database through the journal's writer --
and a missing, unknown or revoked key is answered 401, whatever the body (docs/api.md). The
handler then gets an `ApiKeyAccount`, whose `run` queues a ledger service to the writer
(ledger/journal/writer.py); there the key is checked again in the service's own
transaction, so a revocation in any process takes effect at once, at the cost of one query
per batch rather than one per request. The key's scope is cached with it (it never changes)
and checked in that same transaction: `admin` work with a runtime key is answered 403 (a
revoked key 401 first), and `change` and `admin` pass the key to the ledger as the audit
trail's actor."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from bot.context import AppContext
from bot.http.api.errors import forbidden, unauthorised
from ledger.api_keys import (
    KeyCache,
    KeyHolder,
    KeyRefused,
    KeyScopeRefused,
    as_key_actor,
    as_key_holder,
    checked_key,
    hash_secret,
    look_up,
    well_formed,
)
from ledger.journal.writer import JournalWriter
from ledger.journal.writer import Request as WriterRequest

P = ParamSpec("P")
T = TypeVar("T")
#: A ledger service of one account: `service(session, account_id, ...)`.
AccountService = Callable[Concatenate[Session, int, P], T]


class ApiAccess:
    """The journal's writer and the key cache of one app, and its context (for the work
    that calls Stripe between two transactions)."""

    def __init__(self, writer: JournalWriter, context: AppContext) -> None:
        self.writer = writer
        self.context = context
        self.keys = KeyCache()


class ApiKeyAccount:
    """The account of the request's API key; `run` does its work in the journal's writer."""

    __slots__ = ("_access", "_secret_hash", "account_id")

    def __init__(self, access: ApiAccess, secret_hash: str, account_id: int) -> None:
        self._access, self._secret_hash, self.account_id = access, secret_hash, account_id

    @property
    def context(self) -> AppContext:
        """The app's context, for work that calls Stripe between transactions."""
        return self._access.context

    async def run(self, service: AccountService[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`service(session, account_id, *args, **kwargs)` in the transaction of the batch it
        joins, run in a savepoint of its own (an error it raises takes back all it did)."""
        return await self._queue(service, args, kwargs, savepoint=True)

    async def charge(
        self, service: AccountService[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """As `run`, for a charge, which raises only before it writes (it decides, then
        posts): no savepoint, so two round trips less on PostgreSQL."""
        return await self._queue(service, args, kwargs, savepoint=False)

    async def read(self, service: AccountService[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """As `run`, for a service that only reads (no savepoint needed)."""
        return await self._queue(service, args, kwargs, savepoint=False)

    async def change(self, service: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """As `run`, for a service that changes settings: it is given `actor=`, the key, so
        the audit trail names it."""
        return await self._as_actor(None, service, args, kwargs)

    async def admin(self, service: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """As `change`, for a key of the `admin` scope only (403 for any other)."""
        return await self._as_actor("admin", service, args, kwargs)

    async def admin_holder(self) -> KeyHolder:
        """The key, once it is known to be an admin's (403 otherwise): for work outside
        one transaction, such as a Stripe call between two."""
        args = (self._access.keys, self._secret_hash, "admin")
        return await self._send(WriterRequest(checked_key, args, savepoint=False))

    async def _as_actor(
        self, scope: str | None, service: Callable[..., T], args: tuple[Any, ...], kwargs: dict
    ) -> T:
        args = (self._access.keys, self._secret_hash, scope, service, *args)
        return await self._send(WriterRequest(as_key_actor, args, kwargs, order=self.account_id))

    async def _queue(
        self,
        service: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        savepoint: bool,
    ) -> T:
        access = self._access
        work = WriterRequest(
            as_key_holder,
            (access.keys, self._secret_hash, service, *args),
            kwargs,
            savepoint=savepoint,
            order=self.account_id,
        )
        return await self._send(work)

    async def _send(self, work: WriterRequest) -> Any:
        try:
            return await self._access.writer.run(work)
        except KeyRefused:
            raise unauthorised() from None
        except KeyScopeRefused:
            raise forbidden() from None

    async def still_valid(self) -> bool:
        """Whether the key is still good, asked of the database (for answers the cache
        alone decided on)."""
        access = self._access
        work = WriterRequest(look_up, (access.keys, self._secret_hash), savepoint=False)
        return await access.writer.run(work) is not None


async def authenticate(request: Request) -> ApiKeyAccount:
    """The account of the request's bearer key, or 401 (missing, malformed, unknown,
    revoked). A key this process has seen costs no query here."""
    return await account_of(request.app.state.api, request.headers.get("authorization", ""))


async def account_of(access: ApiAccess, authorization: str) -> ApiKeyAccount:
    """The account of the key in `authorization` (an Authorization header's value, "" when
    there is none), or 401: `authenticate` for a caller holding the header, not a Request."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not well_formed(token.strip()):
        raise unauthorised()
    secret_hash = hash_secret(token.strip())
    holder = access.keys.cached(secret_hash)
    if holder is None:
        work = WriterRequest(look_up, (access.keys, secret_hash), savepoint=False)
        holder = await access.writer.run(work)
        if holder is None:
            raise unauthorised()
    return ApiKeyAccount(access, secret_hash, holder.account_id)


#: The scheme ApiKeyRoute checks, as the OpenAPI document names it.
SCHEME = {
    "HTTPBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key from `creditbot api-keys create`, as "
        "'Authorization: Bearer cb_...'.",
    }
}


class ApiKeyRoute(APIRoute):
    """A /v1 route that authenticates before FastAPI parses or validates anything, so a
    request without a valid key is answered 401 whatever its body (once the body kept
    within its limits: a body too large is 413, one that stalls 408). (The route checks
    the key itself rather than through a FastAPI security dependency, which would cost
    every request a fifth of its time in FastAPI; `document_api_keys` names the scheme.)"""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        extra = dict(kwargs.get("openapi_extra") or {})
        extra.setdefault("security", [{name: []} for name in SCHEME])
        kwargs["openapi_extra"] = extra
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def authenticated(request: Request) -> Response:
            # The body is read first (bounded and timed by bot.http.body_limit: 413, 408),
            # then the key, then FastAPI parses the body Starlette kept.
            await request.body()
            account = await authenticate(request)
            request.state.account = account
            try:
                return await handle(request)
            except RequestValidationError:
                # The key may have been revoked since this process last checked it: an
                # invalid request is answered 422 only for a key that is still good.
                if not await account.still_valid():
                    raise unauthorised() from None
                raise

        return authenticated


def document_api_keys(app: FastAPI) -> None:
    """Name the API-key scheme of the /v1 routes in the app's OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(SCHEME)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
