"""What the CLI commands share: a context, transactions, and turning errors into messages."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import TypeVar

import click
from rich.console import Console
from sqlalchemy.orm import Session

from bot.context import AppContext, build_context
from ledger.db import transaction
from ledger.errors import LedgerError
from ledger.units import credits

T = TypeVar("T")
# Piped or captured output keeps whole lines: tables wrap at 160 columns, not 80.
console = Console(width=None if sys.stdout.isatty() else 160)


@cache
def context() -> AppContext:
    return build_context()


@contextmanager
def _clear_errors() -> Iterator[None]:
    try:
        yield
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from exc


def run(work: Callable[[Session], T]) -> T:
    """Run `work` in one committed transaction; ledger errors become clear CLI errors."""
    with _clear_errors():
        return transaction(context().sessions, work)


def parse_credits(value: str) -> int:
    """Whole or decimal credits typed on the command line, as milli-credits."""
    with _clear_errors():
        return credits(value)


class CreditsType(click.ParamType):
    name = "credits"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int):
            return value
        try:
            return credits(str(value))
        except LedgerError as exc:
            self.fail(str(exc), param, ctx)


CREDITS = CreditsType()


def account_option(func: Callable[..., object]) -> Callable[..., object]:
    return click.option(
        "--account",
        "account_ref",
        required=True,
        help="Account id, Slack team id or name.",
    )(func)
