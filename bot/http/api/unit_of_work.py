"""Where a /v1 request's work meets the database: one transaction for the account of its
API key, behind that key's gate (bot/http/gates.py).

This is the one seam between the API and the database's concurrency. Handlers hand it a
ledger service and its arguments; the service is called as
`service(session, account_id, *args, **kwargs)` once the key has been checked in the same
transaction. Replacing the gates (say, by a batched writer in the ledger) changes this module
and nothing else under bot/http/api.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session

from bot.context import AppContext
from bot.http.api.errors import ApiError, forbidden, unauthorised
from bot.http.gates import Gates
from ledger.api_keys import KeyHolder, authenticate, key_holder, well_formed
from ledger.db import transaction
from ledger.errors import LedgerError
from ledger.tracing import bind

P = ParamSpec("P")
T = TypeVar("T")
#: A ledger service of one account: `service(session, account_id, ...)`.
AccountService = Callable[Concatenate[Session, int, P], T]


class UnitOfWork:
    """The API's gates and sessions, one per app."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self._sessions = context.sessions
        # Errors raised before any write: group commit answers them alone, without a rerun.
        self._gates = Gates(context.engine, sessions=context.sessions, safe=(LedgerError, ApiError))

    def transact(self, token: str, unit: Callable[[Session], T]) -> T:
        """`unit` in one transaction, once the requests of this key ahead of it are done."""
        with self._gates.for_key(token):
            return transaction(self._sessions, unit)

    def transact_charge(self, token: str, unit: Callable[[Session], T]) -> T:
        """As `transact`, for a charge (which raises only before it writes): on PostgreSQL
        its transaction and commit may be shared with other charges of the same key that
        are waiting (group commit)."""
        batch = self._gates.group_for_key(token)
        if batch is None:
            return self.transact(token, unit)
        return batch.transact(unit)


class ApiKeyAccount:
    """The account a request's API key names. Its work runs through `transact` (or
    `transact_charge`), which checks the key inside the request's one transaction."""

    __slots__ = ("_work", "_token")

    def __init__(self, work: UnitOfWork, token: str | None) -> None:
        self._work, self._token = work, token

    @property
    def context(self) -> AppContext:
        """The app's context, for work that calls Stripe between transactions."""
        return self._work.context

    def transact(self, service: AccountService[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`service(session, account_id, *args, **kwargs)` in one transaction."""
        token, unit = self._unit(service, args, kwargs)
        return self._work.transact(token, unit)

    def transact_charge(
        self, service: AccountService[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """As `transact`, for a charge: may share a group commit (see UnitOfWork)."""
        token, unit = self._unit(service, args, kwargs)
        return self._work.transact_charge(token, unit)

    def change(self, service: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """As `transact`, for a service that changes settings: it is given `actor=`, the
        key, so the audit trail names it."""
        return self._as_holder(service, args, kwargs, admin=False)

    def admin(self, service: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """As `change`, for a key of the `admin` scope only (403 for any other)."""
        return self._as_holder(service, args, kwargs, admin=True)

    def admin_holder(self) -> KeyHolder:
        """The key, once it is known to be an admin's (403 otherwise): for work outside
        one transaction, such as a Stripe call between two."""
        return self.admin(lambda session, account_id, actor: self._holder(session))

    def _holder(self, session: Session) -> KeyHolder:
        holder = key_holder(session, self._token)
        if holder is None:
            raise unauthorised()
        return holder

    def _as_holder(
        self,
        service: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        admin: bool,
    ) -> T:
        token = self._token
        if token is None or not well_formed(token):
            raise unauthorised()

        def unit(session: Session) -> T:
            holder = self._holder(session)
            if admin and holder.scope != "admin":
                raise forbidden()
            return service(session, holder.account_id, *args, actor=holder.actor, **kwargs)

        return self._work.transact(token, unit)

    def _unit(
        self, service: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[str, Callable[[Session], T]]:
        """The key and the unit of work for its account. A key that cannot be ours is
        refused at once, without touching the database."""
        token = self._token
        if token is None or not well_formed(token):
            raise unauthorised()

        def unit(session: Session) -> T:
            account_id = authenticate(session, token)
            if account_id is None:
                raise unauthorised()
            return service(session, account_id, *args, **kwargs)

        # A group commit may run it on another request's thread: it keeps this request's id.
        return token, bind(unit)
