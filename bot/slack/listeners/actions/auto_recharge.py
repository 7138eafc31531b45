"""Auto-recharge settings (opens the modal) and Add a card (a Stripe setup page)."""

from __future__ import annotations

from typing import Any

from slack_bolt import BoltContext
from slack_sdk import WebClient

from bot import stripe as stripe_gateway
from bot.slack import blocks
from bot.slack.bolt_context import account_of, app_context
from bot.slack.listeners.modals import open_auto_recharge_modal
from bot.slack.replies import acting_user


def open_auto_recharge(body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    open_auto_recharge_modal(context, client, body["trigger_id"], account_of(context).id)


def add_card(body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    """Pushed over the auto-recharge modal: the Stripe page that saves a card."""
    try:
        url = stripe_gateway.create_card_checkout(
            app_context(context), account_of(context).id, acting_user(body)
        )
    except Exception as exc:  # noqa: BLE001 - a Stripe failure is told, not swallowed
        message = blocks.error_message(
            f"Could not open the Stripe page to add a card: {blocks.failure_reason(exc)}"
        )
    else:
        message = blocks.card_page_message(url)
    modal = blocks.info_modal("Add a card", message["text"])
    modal["blocks"] = message["blocks"]
    client.views_push(trigger_id=body["trigger_id"], view=modal)
