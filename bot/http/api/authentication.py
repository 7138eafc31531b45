"""Who is asking: the API key of a /v1 request, checked before anything else about it.

Every /v1 route is an `ApiKeyRoute`. Once the body has arrived (within its route's size
and time limits, bot/http/body_limit.py) and before FastAPI parses or validates it, the key
is looked up -- in memory when this process has seen it (`ledger.api_keys.KeyCache`), else
in the database through the journal's writer -- and a missing, unknown or revoked key is
answered 401, whatever the body (docs/api.md). The handler then gets an `ApiKeyAccount`,
whose `run` queues a ledger service to the writer (ledger/journal/writer.py); there the key
is checked again in the service's own transaction, so a revocation in any process takes
effect at once, at the cost of one query per batch rather than one per request.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from bot.http.api.errors import unauthorised
from ledger.api_keys import KeyCache, KeyRefused, as_key_holder, hash_secret, look_up, well_formed
from ledger.journal.writer import JournalWriter
from ledger.journal.writer import Request as WriterRequest

P = ParamSpec("P")
T = TypeVar("T")
#: A ledger service of one account: `service(session, account_id, ...)`.
AccountService = Callable[Concatenate[Session, int, P], T]


class ApiAccess:
    """The journal's writer and the key cache of one app."""

    def __init__(self, writer: JournalWriter) -> None:
        self.writer = writer
        self.keys = KeyCache()


class ApiKeyAccount:
    """The account of the request's API key; `run` does its work in the journal's writer."""

    __slots__ = ("_access", "_secret_hash", "account_id")

    def __init__(self, access: ApiAccess, secret_hash: str, account_id: int) -> None:
        self._access, self._secret_hash, self.account_id = access, secret_hash, account_id

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
        try:
            return await access.writer.run(work)
        except KeyRefused:
            raise unauthorised() from None

    async def still_valid(self) -> bool:
        """Whether the key is still good, asked of the database (for answers the cache
        alone decided on)."""
        access = self._access
        work = WriterRequest(look_up, (access.keys, self._secret_hash), savepoint=False)
        return await access.writer.run(work) is not None


async def authenticate(request: Request) -> ApiKeyAccount:
    """The account of the request's bearer key, or 401 (missing, malformed, unknown,
    revoked). A key this process has seen costs no query here."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not well_formed(token.strip()):
        raise unauthorised()
    access: ApiAccess = request.app.state.api
    secret_hash = hash_secret(token.strip())
    account_id = access.keys.cached(secret_hash)
    if account_id is None:
        work = WriterRequest(look_up, (access.keys, secret_hash), savepoint=False)
        account_id = await access.writer.run(work)
        if account_id is None:
            raise unauthorised()
    return ApiKeyAccount(access, secret_hash, account_id)


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
