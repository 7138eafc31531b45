"""`creditbot recharges list | run`, `creditbot topups list`, `creditbot stripe reconcile |
sweep`: every recharge attempt and top-up, and the Stripe jobs run by hand."""

from __future__ import annotations

from datetime import datetime

import click
from rich.table import Table

from bot.cli.environment import _clear_errors, console, context, run
from bot.cli.options import account_option
from ledger.accounts import get_account
from ledger.cycles import utcnow
from ledger.recharges import list_recharges
from ledger.topups import list_topups
from ledger.units import format_credits, format_money


def register(cli: click.Group) -> None:
    """Add this part's commands to `cli`."""
    cli.add_command(recharges)
    cli.add_command(topups)
    cli.add_command(stripe_group)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


@click.group()
def recharges() -> None:
    """Auto-recharge attempts: every one, with its outcome."""


@recharges.command("list")
@account_option
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def recharges_list(account_ref: str, limit: int) -> None:
    """Every auto-recharge attempt of an account, newest first."""

    def work(session):  # noqa: ANN001, ANN202
        account = get_account(session, account_ref)
        return account, list_recharges(session, account.id, limit=limit)

    account, rows = run(work)
    state = "paused" if account.auto_recharge_paused else (
        "on" if account.auto_recharge_enabled else "off"
    )  # fmt: skip
    table = Table(title=f"Recharges of {account.name} (auto-recharge {state})")
    for column in ("id", "created", "status", "amount", "reason", "decline", "payment", "fix"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r.id),
            _when(r.created_at),
            r.status,
            format_money(r.amount_minor, r.currency),
            r.reason or "",
            r.decline_code or "",
            r.payment_intent_id or "",
            r.fix_url or "",
        )
    console.print(table)
    if not rows:
        console.print("No recharge attempts yet.")


@recharges.command("run")
@account_option
def recharges_run(account_ref: str) -> None:
    """Start a recharge now if the account needs one (the sweep does this regularly)."""
    from bot import stripe as stripe_gateway

    account = run(lambda s: get_account(s, account_ref))
    with _clear_errors():
        outcome = stripe_gateway.recharge_now(context(), account.id)
    console.print(f"recharge: {outcome}")


@click.group()
def topups() -> None:
    """Money received through Stripe."""


@topups.command("list")
@account_option
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def topups_list(account_ref: str, limit: int) -> None:
    """Top-ups of an account (Checkout, saved card, auto-recharge), newest first."""

    def work(session):  # noqa: ANN001, ANN202
        account = get_account(session, account_ref)
        return account, list_topups(session, account.id, limit=limit)

    account, rows = run(work)
    table = Table(title=f"Top-ups of {account.name}")
    for column in ("id", "created", "source", "status", "amount", "credits", "refunded", "payment"):
        table.add_column(column)
    for t in rows:
        table.add_row(
            str(t.id),
            _when(t.created_at),
            t.source,
            t.status,
            format_money(t.amount_minor, t.currency),
            format_credits(t.credited),
            format_money(t.refunded_minor, t.currency) if t.refunded_minor else "",
            t.payment_intent_id or t.checkout_session_id or "",
        )
    console.print(table)
    if not rows:
        console.print("No top-ups yet.")


@click.group("stripe")
def stripe_group() -> None:
    """Stripe jobs the scheduler runs, by hand."""


@stripe_group.command("reconcile")
@click.option("--days", type=click.IntRange(1, 90), default=3, show_default=True)
def stripe_reconcile(days: int) -> None:
    """Credit paid Checkout Sessions and succeeded PaymentIntents, and take back refunds,
    whose webhook never came."""
    from datetime import timedelta

    from bot import stripe as stripe_gateway

    since = utcnow() - timedelta(days=days)
    with _clear_errors():
        count = stripe_gateway.reconcile_payments(context(), since=since)
        refunds = stripe_gateway.reconcile_refunds(context(), since=since)
    console.print(f"reconciled: {count} missed payment(s) credited")
    console.print(f"reconciled: {refunds} missed refund(s) taken back")


@stripe_group.command("sweep")
def stripe_sweep() -> None:
    """Act on recharge requests and start recharges for wallets under their threshold."""
    from bot import stripe as stripe_gateway

    with _clear_errors():
        requested = stripe_gateway.process_recharge_requests(context())
        swept = stripe_gateway.sweep_auto_recharge(context())
    console.print(f"recharge requests handled: {requested}, sweep calls to Stripe: {swept}")
