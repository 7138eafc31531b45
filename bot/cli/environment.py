"""What every `creditbot` command works in: the app context built from the environment
(once per process), the console it prints to, and one committed transaction whose ledger
errors become clear CLI errors."""

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
