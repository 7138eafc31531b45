"""What every `creditbot` command works in: the app context built from the environment
(once per process, with its database checked), the console it prints to, and one committed
transaction whose ledger errors become clear CLI errors.

Exit codes: 0 done, 1 failed (refused input, a failed check), 2 wrong usage,
3 the database is missing, unreachable or not migrated.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import TypeVar

import click
from rich.console import Console
from sqlalchemy.orm import Session

from bot.context import AppContext, build_context
from bot.database import check_database
from ledger.audit import Actor
from ledger.db import transaction
from ledger.errors import LedgerError

T = TypeVar("T")
# Piped or captured output keeps whole lines: tables wrap at 160 columns, not 80.
console = Console(width=None if sys.stdout.isatty() else 160)
#: Progress and notes for people, kept out of what scripts read on stdout.
err_console = Console(stderr=True)

EXIT_DATABASE = 3


class DatabaseNotReady(click.ClickException):
    """The database cannot be used: one line saying why, one saying what to do."""

    exit_code = EXIT_DATABASE

    def __init__(self, problem: str, hint: str | None) -> None:
        super().__init__(problem)
        self.hint = hint

    def format_message(self) -> str:
        return f"{self.message}\nHint: {self.hint}" if self.hint else self.message


def require_database(ctx: AppContext) -> None:
    """Refuse to go on, clearly, unless the database is there, reachable and migrated."""
    state = check_database(ctx.engine)
    if not state.ready:
        ctx.engine.dispose()
        raise DatabaseNotReady(state.problem or "the database cannot be used", state.hint)


@cache
def context() -> AppContext:
    """The context of a command that uses the database (checked once per process)."""
    ctx = build_context()
    require_database(ctx)
    return ctx


@contextmanager
def _clear_errors() -> Iterator[None]:
    try:
        yield
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from exc


def operator() -> Actor:
    """Who runs this command, as the audit trail names them: the operating system's user."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment
        name = "unknown"
    return Actor.cli(name)


def run(work: Callable[[Session], T]) -> T:
    """Run `work` in one committed transaction; ledger errors become clear CLI errors."""
    with _clear_errors():
        return transaction(context().sessions, work)
