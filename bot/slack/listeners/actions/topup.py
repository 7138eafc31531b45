"""Top up (opens the modal), Pay $X (a Stripe Checkout page, made when pressed) and Charge
card (after Slack's confirm dialog)."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import BoltContext, Respond
from slack_sdk import WebClient

from bot import stripe as stripe_gateway
from bot.slack import blocks
from bot.slack.bolt_context import account_of, app_context
from bot.slack.dashboard_data import card_of
from bot.slack.listeners.modals import open_topup_modal
from bot.slack.replies import acting_user, tell
from ledger.units import format_money


def open_topup(body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    open_topup_modal(context, client, body["trigger_id"], account_of(context).id)


def _amount(action: dict[str, Any]) -> tuple[int, str | None]:
    """The button's amount and its key. The Stripe side checks the amount against the
    account's limits (they may have changed) in the transaction that opens the payment."""
    value = json.loads(action.get("value") or "{}")
    return int(value["amount_minor"]), value.get("key")


def _show(
    body: dict[str, Any], client: WebClient, respond: Respond, title: str, message: dict[str, Any]
) -> None:
    """Replace what the button was in: the ephemeral answer, or the modal."""
    view = body.get("view")
    if view and (body.get("container") or {}).get("type") == "view":
        modal = blocks.info_modal(title, message["text"])
        modal["blocks"] = message["blocks"]
        client.views_update(view_id=view["id"], view=modal)
    else:
        tell(body, client, respond, message, replace=True)


def pay(
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    respond: Respond,
) -> None:
    account = account_of(context)
    minor, _ = _amount(action)
    amount = format_money(minor, account.currency)
    try:
        url = stripe_gateway.create_topup_checkout(
            app_context(context), account.id, minor, acting_user(body)
        )
    except Exception as exc:  # noqa: BLE001 - any Stripe failure is told, not swallowed
        reason = blocks.failure_reason(exc)
        message = blocks.error_message(f"Could not open the payment page for {amount}: {reason}")
    else:
        message = blocks.checkout_ready_message(amount, url)
    _show(body, client, respond, "Top up", message)


def charge_card(
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    respond: Respond,
) -> None:
    account = account_of(context)
    minor, key = _amount(action)
    amount = format_money(minor, account.currency)
    card = card_of(app_context(context), account.id)
    if card is None:
        message = blocks.error_message("No card is saved any more: use Pay instead.")
        _show(body, client, respond, "Top up", message)
        return
    try:
        result = stripe_gateway.charge_saved_card(
            app_context(context),
            account.id,
            minor,
            key or f"slack-topup:{body.get('trigger_id')}",
            acting_user(body),
        )
    except Exception as exc:  # noqa: BLE001 - any Stripe failure is told, not swallowed
        reason = blocks.failure_reason(exc)
        message = blocks.error_message(f"Charging {amount} to {card.label} failed: {reason}")
    else:
        message = blocks.info_message(blocks.charge_started_text(amount, card, result))
    _show(body, client, respond, "Top up", message)
