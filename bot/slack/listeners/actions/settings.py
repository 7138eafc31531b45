"""Auto-recharge settings (opens the modal) and Add a card (a Stripe setup page)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot import stripe as stripe_gateway
from bot.slack import blocks
from bot.slack.deps import app_context, guarded, require_account, require_admin, user_id
from bot.slack.listeners.common import open_auto_recharge_modal


@guarded
def open_auto_recharge(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    ack()
    account = require_account(context, body, client, respond)
    if account is None or not require_admin(
        account, body, client, respond, "change auto-recharge settings"
    ):
        return
    open_auto_recharge_modal(context, client, body["trigger_id"], account.id)


@guarded
def add_card(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    account = require_account(context, body, client, None)
    if account is None or not require_admin(account, body, client, None, "add a card"):
        return
    try:
        url = stripe_gateway.create_card_checkout(app_context(context), account.id, user_id(body))
    except Exception as exc:  # noqa: BLE001 - a Stripe failure is told, not swallowed
        message = blocks.error_message(
            f"Could not open the Stripe page to add a card: {blocks.failure_reason(exc)}"
        )
    else:
        message = {
            "text": f"Add a card on Stripe: {url}",
            "blocks": [
                blocks.section(
                    "Add or replace the card on Stripe's page. It is saved for auto-recharge"
                    " and one-click top-ups once Stripe confirms it.",
                    accessory=blocks.button(
                        "Open Stripe", blocks.OPEN_LINK, url=url, style="primary"
                    ),
                )
            ],
        }
    modal = blocks.info_modal("Add a card", message["text"])
    modal["blocks"] = message["blocks"]
    client.views_push(trigger_id=body["trigger_id"], view=modal)
