"""`creditbot recharges list | run`, `creditbot topups list`, `creditbot stripe reconcile |
sweep`: every recharge attempt and top-up, and the Stripe jobs run by hand."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn

from bot.cli.environment import _clear_errors, console, context, err_console, run
from bot.cli.options import account_option
from bot.cli.output import emit_json, json_option, local_time, table
from ledger.accounts import get_account
from ledger.cycles import utcnow
from ledger.models.payments import Recharge, Topup
from ledger.recharges import list_recharges
from ledger.topups import list_topups
from ledger.units import format_credits, format_money


def register(cli: click.Group) -> None:
    """Add this part's commands to `cli`."""
    cli.add_command(recharges)
    cli.add_command(topups)
    cli.add_command(stripe_group)


@click.group()
def recharges() -> None:
    """Auto-recharge attempts: every one, with its outcome."""


def recharge_json(r: Recharge) -> dict[str, Any]:
    return {
        "id": r.id,
        "created_at": r.created_at,
        "finished_at": r.finished_at,
        "status": r.status,
        "trigger": r.trigger,
        "amount_minor": r.amount_minor,
        "currency": r.currency,
        "reason": r.reason,
        "decline_code": r.decline_code,
        "message": r.message,
        "payment_intent_id": r.payment_intent_id,
        "fix_url": r.fix_url,
        "tries": r.tries,
        "paused_auto_recharge": r.paused_auto_recharge,
    }


@recharges.command("list")
@account_option
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
def recharges_list(account_ref: str, limit: int, as_json: bool) -> None:
    """Every auto-recharge attempt of an account, newest first (times in its time zone)."""

    def work(session):  # noqa: ANN001, ANN202
        account = get_account(session, account_ref)
        return account, list_recharges(session, account.id, limit=limit)

    account, rows = run(work)
    if as_json:
        emit_json([recharge_json(r) for r in rows])
        return
    state = "paused" if account.auto_recharge_paused else (
        "on" if account.auto_recharge_enabled else "off"
    )  # fmt: skip
    out = table(
        "id", "created", "status", "amount", "reason", "decline", "payment",
        title=f"Recharges of {escape(account.name)} (auto-recharge {state})",
    )  # fmt: skip
    for r in rows:
        out.add_row(
            str(r.id),
            local_time(r.created_at, account.timezone),
            r.status,
            format_money(r.amount_minor, r.currency),
            r.reason or "",
            r.decline_code or "",
            r.payment_intent_id or "",
        )
    console.print(out)
    if not rows:
        console.print("No recharge attempts yet.")
    # Each link whole on a line of its own, never cut or folded: people copy it.
    for r in rows:
        if r.fix_url:
            console.print(f"fix recharge {r.id}: {r.fix_url}", soft_wrap=True, highlight=False)


@recharges.command("run")
@account_option
def recharges_run(account_ref: str) -> None:
    """Start a recharge now if the account needs one (the sweep does this regularly).

    It does not wait after a failed attempt, as automatic triggers do: run it once the
    card is fixed. Exits with status 1 when the attempt fails."""
    from bot import stripe as stripe_gateway

    account = run(lambda s: get_account(s, account_ref))
    with _clear_errors():
        outcome = stripe_gateway.recharge_now(context(), account.id)
    console.print(f"recharge: {outcome}")
    if outcome.startswith("failed"):
        raise SystemExit(1)


@click.group()
def topups() -> None:
    """Money received through Stripe."""


def topup_json(t: Topup) -> dict[str, Any]:
    return {
        "id": t.id,
        "created_at": t.created_at,
        "paid_at": t.paid_at,
        "source": t.source,
        "status": t.status,
        "amount_minor": t.amount_minor,
        "currency": t.currency,
        "credited_millicredits": t.credited,
        "refunded_minor": t.refunded_minor,
        "refund_shortfall_millicredits": t.refund_shortfall,
        "payment_intent_id": t.payment_intent_id,
        "checkout_session_id": t.checkout_session_id,
        "requested_by": t.requested_by,
    }


@topups.command("list")
@account_option
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
def topups_list(account_ref: str, limit: int, as_json: bool) -> None:
    """Top-ups of an account (Checkout, saved card, auto-recharge), newest first."""

    def work(session):  # noqa: ANN001, ANN202
        account = get_account(session, account_ref)
        return account, list_topups(session, account.id, limit=limit)

    account, rows = run(work)
    if as_json:
        emit_json([topup_json(t) for t in rows])
        return
    out = table(
        "id", "created", "source", "status", "amount", "credits", "refunded", "payment",
        title=f"Top-ups of {escape(account.name)}",
    )  # fmt: skip
    for t in rows:
        out.add_row(
            str(t.id),
            local_time(t.created_at, account.timezone),
            t.source,
            t.status,
            format_money(t.amount_minor, t.currency),
            format_credits(t.credited),
            format_money(t.refunded_minor, t.currency) if t.refunded_minor else "",
            t.payment_intent_id or t.checkout_session_id or "",
        )
    console.print(out)
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

    ctx = context()
    if not ctx.settings.stripe_secret_key:
        err_console.print(
            "Nothing reconciled: Stripe is not configured (STRIPE_SECRET_KEY is not set)."
        )
        raise SystemExit(1)
    with (
        _clear_errors(),
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            console=err_console,
            transient=True,
            disable=not err_console.is_terminal,
        ) as bar,
    ):
        task = bar.add_task("Asking Stripe for the payments of the last days")

        def show(checked: int, credited: int) -> None:
            bar.update(
                task, description=f"{checked} Stripe payment(s) checked, {credited} credited"
            )

        since = utcnow() - timedelta(days=days)
        count = stripe_gateway.reconcile_payments(ctx, since=since, progress=show)
        refunds = stripe_gateway.reconcile_refunds(ctx, since=since)
    console.print(f"reconciled: {count} missed payment(s) credited")
    console.print(f"reconciled: {refunds} missed refund(s) taken back")


@stripe_group.command("add-card")
@account_option
def stripe_add_card(account_ref: str) -> None:
    """Print a Stripe page where the account's card is added or replaced (auto-recharge
    and one-click top-ups charge it). The page expires within the hour."""
    from bot import stripe as stripe_gateway

    account = run(lambda s: get_account(s, account_ref))
    with _clear_errors():
        url = stripe_gateway.create_card_checkout(context(), account.id, "cli")
    console.print(f"Add or replace the card of {account.name} on Stripe: {url}")


@stripe_group.command("sweep")
def stripe_sweep() -> None:
    """Act on recharge requests and start recharges for wallets under their threshold.

    Exits with status 1 when an account failed (the others are still handled)."""
    from bot import stripe as stripe_gateway

    with _clear_errors():
        requested = stripe_gateway.process_recharge_requests(context())
        swept = stripe_gateway.sweep_auto_recharge(context())
    console.print(
        f"recharge requests handled: {requested.requests}, sweep calls to Stripe: {swept.started}"
    )
    problems = [run.problems() for run in (requested, swept) if not run.ok]
    if problems:
        console.print(f"[red]failed[/red]: {'; '.join(problems)}")
        raise SystemExit(1)
