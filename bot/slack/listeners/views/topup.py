"""The top-up modal: an amount (a preset or typed), checked as rule 8 says; the modal then
offers Pay (and Charge card when a card is saved)."""

from __future__ import annotations

import uuid
from typing import Any

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient

from bot.slack import blocks
from bot.slack.deps import guarded, linked_account, run
from bot.slack.listeners.common import topup_offer
from bot.slack.listeners.views.common import selected, text_value
from bot.slack.permissions import is_billing_admin
from ledger.accounts import get_account
from ledger.errors import LedgerError
from ledger.topups import check_topup, parse_topup


@guarded
def topup_submitted(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    account = linked_account(context)
    if account is None:
        ack(
            response_action="errors",
            errors={"amount": blocks.not_linked_message(context.team_id)["text"]},
        )
        return
    if not is_billing_admin(client, account.billing_admins, body["user"]["id"]):
        refusal = blocks.refusal_text("top up the wallet", account.billing_admins)
        ack(response_action="update", view=blocks.info_modal("Not allowed", refusal))
        return
    typed = text_value(view, "amount", "amount_input")
    preset = selected(view, "preset", "preset_input")
    if not typed and not preset:
        ack(response_action="errors", errors={"amount": "Choose an amount or type one."})
        return
    try:
        if typed:
            minor = run(context, lambda s: parse_topup(get_account(s, account.id), typed))
        else:
            minor = run(context, lambda s: check_topup(get_account(s, account.id), int(preset)))
    except LedgerError as exc:
        ack(response_action="errors", errors={"amount": str(exc)})
        return
    offer = topup_offer(context, account, minor, uuid.uuid4().hex)
    modal = blocks.info_modal("Top up the wallet", offer["text"])
    modal["blocks"] = offer["blocks"]
    ack(response_action="update", view=modal)
