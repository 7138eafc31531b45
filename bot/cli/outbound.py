"""`creditbot webhooks add | list | remove | send` and `creditbot emails add | list |
remove`: where an account's alerts go besides Slack (docs/operations.md)."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape
from sqlalchemy.orm import Session

from bot.cli.environment import console, context, operator, run
from bot.cli.options import account_option
from bot.cli.output import emit_json, json_option, local_time, table
from bot.context import secrets_cipher
from ledger import deliveries, destinations
from ledger.accounts import get_account
from ledger.models.destinations import AlertEmail, WebhookEndpoint
from ledger.outbox import WEBHOOK_EVENT_TYPES


def register(cli: click.Group) -> None:
    """Add this part's commands to `cli`."""
    cli.add_command(webhooks)
    cli.add_command(emails)


def _state(state: deliveries.DestinationState | None) -> dict[str, Any]:
    state = state or deliveries.DestinationState(0, 0, None)
    return {"delivered": state.delivered, "waiting": state.undelivered,
            "last_error": state.last_error}  # fmt: skip


@click.group()
def webhooks() -> None:
    """Signed webhooks (Standard Webhooks) that receive an account's alerts, and the
    agent.stopped / agent.resumed events agent runtimes act on."""


@webhooks.command("add")
@account_option
@click.argument("url")
@click.option(
    "--events",
    "event_types",
    default="",
    help="Comma-separated event types or families (alert.*, agent.*); default: all. "
    f"Types: {', '.join(WEBHOOK_EVENT_TYPES)}.",
)
@click.option("--description", default="", help="What receives it (shown in the list).")
def webhooks_add(account_ref: str, url: str, event_types: str, description: str) -> None:
    """Send the account's alerts to URL (https). The signing secret is printed once, on
    stdout: give it to the receiver now, it is not shown again. It is kept encrypted with
    CREDITBOT_ENCRYPTION_KEYS, without which no endpoint is added."""
    endpoint, secret = run(
        lambda s: destinations.add_endpoint(
            s,
            get_account(s, account_ref).id,
            url,
            cipher=secrets_cipher(context()),
            event_types=event_types.split(","),
            description=description,
            actor=operator(),
        )
    )
    wanted = ", ".join(endpoint.event_types) or "every event"
    click.echo(
        f"Webhook endpoint {endpoint.id} added for account {endpoint.account_id}: "
        f"{endpoint.url} ({wanted}). Its signing secret follows: store it now.",
        err=True,
    )
    click.echo(secret)


def _endpoint_json(e: WebhookEndpoint, state: deliveries.DestinationState | None) -> dict:
    return {"id": e.id, "account_id": e.account_id, "url": e.url,
            "event_types": e.event_types or [], "description": e.description,
            "created_at": e.created_at, **_state(state)}  # fmt: skip


@webhooks.command("list")
@click.option("--account", "account_ref", default=None, help="Only this account's endpoints.")
@json_option
def webhooks_list(account_ref: str | None, as_json: bool) -> None:
    """Endpoints (secrets are never shown again), with what was delivered, what waits
    and the last error."""

    def read(session: Session) -> tuple[str, list[WebhookEndpoint], dict]:
        account = get_account(session, account_ref) if account_ref else None
        found = destinations.endpoints(session, account.id if account else None)
        states = deliveries.destination_states(session, "webhook", [e.id for e in found])
        return (account.timezone if account else "UTC"), found, states

    tz, found, states = run(read)
    if as_json:
        emit_json([_endpoint_json(e, states.get(e.id)) for e in found])
        return
    out = table("id", "account", "url", "events", "created", "delivered", "waiting", "last error")
    for e in found:
        state = _state(states.get(e.id))
        out.add_row(str(e.id), str(e.account_id), escape(e.url),
                    escape(", ".join(e.event_types or []) or "all"),
                    local_time(e.created_at, tz), str(state["delivered"]),
                    str(state["waiting"]), escape(state["last_error"] or ""))  # fmt: skip
    console.print(out)
    if not found:
        console.print("No webhook endpoints.")


@webhooks.command("remove")
@account_option
@click.argument("endpoint_id", type=int)
def webhooks_remove(account_ref: str, endpoint_id: int) -> None:
    """Stop sending to ENDPOINT_ID (what still waits for it is dropped)."""
    run(
        lambda s: destinations.remove_endpoint(
            s, endpoint_id, get_account(s, account_ref).id, actor=operator()
        )
    )
    console.print(f"Webhook endpoint {endpoint_id} removed.")


@webhooks.command("send")
def webhooks_send() -> None:
    """Deliver due webhook events now instead of waiting for the scheduler."""
    from bot.outbound.webhooks import deliver_due_webhooks

    console.print(f"{deliver_due_webhooks(context())} webhook event(s) delivered")


@click.group()
def emails() -> None:
    """Email addresses that receive an account's alerts (over SMTP: SMTP_HOST, ...)."""


@emails.command("add")
@account_option
@click.argument("address")
def emails_add(account_ref: str, address: str) -> None:
    """Email the account's alerts to ADDRESS too."""
    email = run(
        lambda s: destinations.add_email(
            s, get_account(s, account_ref).id, address, actor=operator()
        )
    )
    console.print(f"{escape(email.address)} receives the alerts of account {email.account_id}.")
    if not context().settings.smtp_host:
        console.print("Note: SMTP_HOST is not set yet; the emails wait until it is.")


@emails.command("list")
@click.option("--account", "account_ref", default=None, help="Only this account's addresses.")
@json_option
def emails_list(account_ref: str | None, as_json: bool) -> None:
    """Addresses, with what was sent, what waits and the last error."""

    def read(session: Session) -> tuple[list[AlertEmail], dict]:
        account = get_account(session, account_ref) if account_ref else None
        found = destinations.emails(session, account.id if account else None)
        return found, deliveries.destination_states(session, "email", [e.id for e in found])

    found, states = run(read)
    if as_json:
        emit_json([{"id": e.id, "account_id": e.account_id, "address": e.address,
                    "created_at": e.created_at, **_state(states.get(e.id))}
                   for e in found])  # fmt: skip
        return
    out = table("id", "account", "address", "sent", "waiting", "last error")
    for e in found:
        state = _state(states.get(e.id))
        out.add_row(str(e.id), str(e.account_id), escape(e.address), str(state["delivered"]),
                    str(state["waiting"]), escape(state["last_error"] or ""))  # fmt: skip
    console.print(out)
    if not found:
        console.print("No alert email addresses.")


@emails.command("remove")
@account_option
@click.argument("address")
def emails_remove(account_ref: str, address: str) -> None:
    """Stop emailing the account's alerts to ADDRESS."""
    run(
        lambda s: destinations.remove_email(
            s, get_account(s, account_ref).id, address, actor=operator()
        )
    )
    console.print(f"{escape(address)} no longer receives this account's alerts.")
