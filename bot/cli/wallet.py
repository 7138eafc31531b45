"""`creditbot wallet adjust`: an admin credit or debit, journaled with its reason."""

from __future__ import annotations

import uuid

import click

from bot.cli.environment import console, operator, run
from bot.cli.options import account_option, credits_option_value
from ledger.accounts import get_account
from ledger.units import format_credits
from ledger.wallet import credit_wallet, debit_wallet


def register(cli: click.Group) -> None:
    cli.add_command(wallet)


@click.group()
def wallet() -> None:
    """The wallet: credits bought by top-ups."""


@wallet.command("adjust")
@account_option
@click.option(
    "--credits", "amount", required=True, help="Credits to add (e.g. 500) or take (e.g. -200)."
)
@click.option("--reason", required=True, help="Why: kept in the journal.")
@click.option("--key", default=None, help="Idempotency key: the same key twice adjusts once.")
def adjust(account_ref: str, amount: str, reason: str, key: str | None) -> None:
    """Credit or debit the wallet by hand. A debit never takes the wallet below zero."""
    if not reason.strip():
        raise click.BadParameter("say why", param_hint="--reason")
    text = amount.strip()
    negative = text.startswith("-")
    milli = credits_option_value(text[1:] if text.startswith(("-", "+")) else text)
    if milli <= 0:
        raise click.BadParameter("adjust by more than zero credits", param_hint="--credits")
    key = key or f"adjust:{uuid.uuid4().hex}"

    def work(session):  # noqa: ANN001, ANN202
        account = get_account(session, account_ref)
        change = debit_wallet if negative else credit_wallet
        return change(
            session, account.id, milli, key=key, kind="adjustment", memo=reason.strip(),
            actor=operator(),
        )  # fmt: skip

    result = run(work)
    sign = "-" if negative else "+"
    note = " (already done before: nothing changed)" if result.replayed else ""
    console.print(
        f"wallet {sign}{format_credits(result.amount)} credits, now {format_credits(result.wallet_balance)}{note}"
    )
