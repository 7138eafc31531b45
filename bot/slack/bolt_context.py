"""What creditbot keeps in Bolt's `context` for middleware and listeners: the app context
(settings, database) for every request, and the workspace's account once the
linked-account middleware found it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from slack_bolt import BoltContext
from sqlalchemy.orm import Session

from bot.context import AppContext
from ledger.db import transaction

T = TypeVar("T")
APP_CONTEXT = "creditbot"
ACCOUNT = "account"


class _Shared:
    """Bolt deep-copies a request's context for lazy listeners; the engine and session
    factory are the process's, so the copy shares them."""

    __slots__ = ("app_context",)

    def __init__(self, app_context: AppContext) -> None:
        self.app_context = app_context

    def __deepcopy__(self, memo: dict[int, Any]) -> _Shared:
        return self


def app_context_middleware(app_context: AppContext) -> Callable[..., None]:
    """Global middleware putting `app_context` into every request's context."""
    shared = _Shared(app_context)

    def attach_app_context(context: BoltContext, next: Callable[[], None]) -> None:
        context[APP_CONTEXT] = shared
        next()

    return attach_app_context


def app_context(context: BoltContext) -> AppContext:
    return context[APP_CONTEXT].app_context


def in_transaction(context: BoltContext, work: Callable[[Session], T]) -> T:
    """Run `work` in one committed ledger transaction."""
    return transaction(app_context(context).sessions, work)


@dataclass(frozen=True)
class AccountRef:
    """The workspace's account, as middleware and listeners need it."""

    id: int
    name: str
    currency: str
    credits_per_unit: int
    billing_admins: list[str]


def account_of(context: BoltContext) -> AccountRef:
    """The account the linked-account middleware put into the context."""
    return context[ACCOUNT]
