"""Options and values several `creditbot` commands take: `--account`, and credits typed on
the command line."""

from __future__ import annotations

from collections.abc import Callable

import click

from bot.cli.environment import _clear_errors
from ledger.errors import LedgerError
from ledger.units import parse_credits


def credits_option_value(value: str) -> int:
    """Whole or decimal credits typed on the command line, as milli-credits."""
    with _clear_errors():
        return parse_credits(value)


class CreditsType(click.ParamType):
    name = "credits"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_credits(str(value))
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
