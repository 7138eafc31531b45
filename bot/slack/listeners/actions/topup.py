"""Top up, Pay $X (a Stripe Checkout page made when pressed) and Charge card (admins,
after Slack's confirm dialog)."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot import stripe_gateway
from bot.slack import blocks
from bot.slack.dashboard_data import card_of
from bot.slack.deps import app_context, guarded, require_account, require_admin, run, tell, user_id
from bot.slack.listeners.common import open_topup_modal
from ledger.accounts import get_account
from ledger.settings import check_topup
from ledger.units import format_money


@guarded
def open_topup(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    ack()
    account = require_account(context, body, client, respond)
    if account is None or not require_admin(account, body, client, respond, "top up the wallet"):
        return
    open_topup_modal(context, client, body["trigger_id"], account.id)


def _amount(
    context: BoltContext, account_id: int, action: dict[str, Any]
) -> tuple[int, str | None]:
    value = json.loads(action.get("value") or "{}")
    minor = run(
        context, lambda s: check_topup(get_account(s, account_id), int(value["amount_minor"]))
    )
    return minor, value.get("key")


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


@guarded
def pay(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    respond: Respond,
) -> None:
    ack()
    account = require_account(context, body, client, respond)
    if account is None or not require_admin(account, body, client, respond, "top up the wallet"):
        return
    minor, _ = _amount(context, account.id, action)
    amount = format_money(minor, account.currency)
    try:
        url = stripe_gateway.create_topup_checkout(
            app_context(context), account.id, minor, user_id(body)
        )
    except Exception as exc:  # noqa: BLE001 - any Stripe failure is told, not swallowed
        _show(
            body,
            client,
            respond,
            "Top up",
            blocks.error_message(
                f"Could not open the payment page for {amount}: {blocks.failure_reason(exc)}"
            ),
        )
        return
    _show(body, client, respond, "Top up", blocks.checkout_ready_message(amount, url))


@guarded
def charge_card(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    respond: Respond,
) -> None:
    ack()
    account = require_account(context, body, client, respond)
    if account is None or not require_admin(
        account, body, client, respond, "charge the saved card"
    ):
        return
    minor, key = _amount(context, account.id, action)
    amount = format_money(minor, account.currency)
    card = card_of(app_context(context), account.id)
    if card is None:
        _show(
            body,
            client,
            respond,
            "Top up",
            blocks.error_message("No card is saved any more: use Pay instead."),
        )
        return
    try:
        result = stripe_gateway.charge_saved_card(
            app_context(context),
            account.id,
            minor,
            key or f"slack-topup:{body.get('trigger_id')}",
            user_id(body),
        )
    except Exception as exc:  # noqa: BLE001
        _show(
            body,
            client,
            respond,
            "Top up",
            blocks.error_message(
                f"Charging {amount} to {card.label} failed: {blocks.failure_reason(exc)}"
            ),
        )
        return
    _show(
        body,
        client,
        respond,
        "Top up",
        blocks.info_message(blocks.charge_started_text(amount, card, result)),
    )
