"""`creditbot alerts list | retry`: the alerts outbox, pending, failed (with the last
error) or delivered, and failed alerts sent again now."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.cli.environment import console, context, run
from bot.cli.output import emit_json, json_option, local_time, table
from ledger.accounts import get_account
from ledger.models import Account, OutboxMessage
from ledger.outbox_status import ALERT_STATES, DELIVERED, alert_state, list_alerts, retry_alerts


def register(cli: click.Group) -> None:
    """Add this part's commands to `cli`."""
    cli.add_command(alerts)


@click.group()
def alerts() -> None:
    """Alerts on their way to Slack: pending, failed (and why), delivered."""


def _account_id(session: Session, account_ref: str | None) -> int | None:
    return get_account(session, account_ref).id if account_ref else None


def _accounts(session: Session, messages: list[OutboxMessage]) -> dict[int, Account]:
    ids = {m.account_id for m in messages if m.account_id is not None}
    if not ids:
        return {}
    found = session.execute(select(Account).where(Account.id.in_(ids))).scalars()
    return {a.id: a for a in found}


def alert_json(message: OutboxMessage, account: Account | None) -> dict[str, Any]:
    return {
        "id": message.id,
        "account_id": message.account_id,
        "account_name": account.name if account else None,
        "kind": message.kind,
        "state": alert_state(message),
        "attempts": message.attempts,
        "created_at": message.created_at,
        "next_attempt_at": None if message.delivered_at else message.available_at,
        "delivered_at": message.delivered_at,
        "last_error": message.last_error,
        "payload": message.payload,
    }


@alerts.command("list")
@click.option("--account", "account_ref", default=None, help="Only this account.")
@click.option(
    "--status",
    "states",
    type=click.Choice(ALERT_STATES),
    multiple=True,
    help="Only alerts in this state (repeat for several; default: all).",
)
@click.option("--kind", default=None, help="Only this kind (plan_low, agent_stopped, ...).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@json_option
def alerts_list(
    account_ref: str | None, states: tuple[str, ...], kind: str | None, limit: int, as_json: bool
) -> None:
    """Alerts newest first: when each was written (in its account's time zone), its
    state, attempts, next attempt and last error."""

    def read(session: Session) -> tuple[list[OutboxMessage], dict[int, Account]]:
        messages = list_alerts(
            session,
            states=states or ALERT_STATES,
            account_id=_account_id(session, account_ref),
            kind=kind,
            limit=limit,
        )
        return messages, _accounts(session, messages)

    messages, accounts = run(read)
    if as_json:
        emit_json([alert_json(m, accounts.get(m.account_id or 0)) for m in messages])
        return
    out = table("id", "account", "alert", "state", "written", "tries", "next try", "last error")
    for m in messages:
        account = accounts.get(m.account_id or 0)
        tz = account.timezone if account else "UTC"
        state = alert_state(m)
        out.add_row(
            str(m.id),
            escape(account.name) if account else "",
            m.kind.removeprefix("alert."),
            {"failed": "[red]failed[/red]", DELIVERED: "[green]delivered[/green]"}.get(
                state, state
            ),
            local_time(m.created_at, tz),
            str(m.attempts),
            "" if m.delivered_at else local_time(m.available_at, tz),
            escape(m.last_error or ""),
        )
    console.print(out)
    if not messages:
        console.print("No alerts.")


@alerts.command("retry")
@click.argument("alert_ids", nargs=-1, type=int)
@click.option("--account", "account_ref", default=None, help="Only this account's alerts.")
@click.option(
    "--no-deliver",
    is_flag=True,
    help="Only make them due now; the scheduler posts them within seconds.",
)
def alerts_retry(alert_ids: tuple[int, ...], account_ref: str | None, no_deliver: bool) -> None:
    """Send undelivered alerts now (ALERT_IDS, or every one), without waiting for their
    backoff. Exits 1 if any still fails."""
    from bot.slack.alerts import deliver_due_alerts

    ids = run(lambda s: retry_alerts(s, ids=alert_ids, account_id=_account_id(s, account_ref)))
    if not ids:
        console.print("No undelivered alert to retry.")
        return
    if no_deliver:
        console.print(f"{len(ids)} alert(s) due now: the scheduler posts them.")
        return
    deliver_due_alerts(context())
    after = run(
        lambda s: list(s.execute(select(OutboxMessage).where(OutboxMessage.id.in_(ids))).scalars())
    )
    still = [m for m in after if m.delivered_at is None]
    console.print(f"{len(after) - len(still)} of {len(ids)} alert(s) delivered")
    for m in still:
        console.print(f"alert {m.id} ({m.kind}) not delivered: {escape(m.last_error or 'waiting')}")
    if still:
        raise SystemExit(1)
