"""The top-up modal: an amount (a preset or typed), checked as rule 8 says; the modal then
offers Pay (and Charge card when a card is saved)."""

from __future__ import annotations

import uuid
from typing import Any

from slack_bolt import Ack, BoltContext

from bot.slack import blocks
from bot.slack.bolt_context import account_of, in_transaction
from bot.slack.listeners.topup_offer import topup_offer
from bot.slack.listeners.views.fields import selected, text_value
from ledger.accounts import get_account
from ledger.errors import LedgerError
from ledger.topups import check_topup, parse_topup


def topup_submitted(ack: Ack, view: dict[str, Any], context: BoltContext) -> None:
    account = account_of(context)
    typed = text_value(view, "amount", "amount_input")
    preset = selected(view, "preset", "preset_input")
    if not typed and not preset:
        ack(response_action="errors", errors={"amount": "Choose an amount or type one."})
        return
    try:
        if typed:
            minor = in_transaction(
                context, lambda s: parse_topup(get_account(s, account.id), typed)
            )
        elif preset.isascii() and preset.isdigit() and len(preset) <= 15:  # our option values
            minor = in_transaction(
                context, lambda s: check_topup(get_account(s, account.id), int(preset))
            )
        else:
            ack(response_action="errors", errors={"amount": "Choose an amount or type one."})
            return
    except LedgerError as exc:
        ack(response_action="errors", errors={"amount": str(exc)})
        return
    offer = topup_offer(context, account, minor, uuid.uuid4().hex)
    modal = blocks.info_modal("Top up the wallet", offer["text"])
    modal["blocks"] = offer["blocks"]
    ack(response_action="update", view=modal)
