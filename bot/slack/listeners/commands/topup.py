"""/topup opens the amount modal; /topup 50 checks the amount (rule 8) and answers with
the offer to pay it."""

from __future__ import annotations

import json
import uuid
from typing import Any

from slack_bolt import BoltContext, Respond
from slack_sdk import WebClient

from bot.slack import blocks
from bot.slack.bolt_context import account_of, in_transaction
from bot.slack.listeners.modals import open_topup_modal
from bot.slack.listeners.topup_offer import topup_offer
from ledger.accounts import get_account
from ledger.errors import LedgerError
from ledger.topups import parse_topup


def topup_command(
    body: dict[str, Any],
    command: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    respond: Respond,
) -> None:
    account = account_of(context)
    text = (command.get("text") or "").strip()
    if not text:
        metadata = json.dumps({"channel_id": body.get("channel_id")})
        open_topup_modal(context, client, body["trigger_id"], account.id, metadata)
        return
    try:
        amount = in_transaction(context, lambda s: parse_topup(get_account(s, account.id), text))
    except LedgerError as exc:
        respond(
            response_type="ephemeral",
            **blocks.error_message(f"{exc} For example: `/topup 50`."),
        )
        return
    respond(response_type="ephemeral", **topup_offer(context, account, amount, uuid.uuid4().hex))
