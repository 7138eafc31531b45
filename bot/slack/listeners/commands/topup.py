"""/topup [amount]: an amount offers "Pay" (and "Charge card" when a card is saved);
no amount opens the top-up modal. For billing admins only."""

from __future__ import annotations

import json
import uuid
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot.slack import blocks
from bot.slack.deps import guarded, require_account, require_admin, run
from bot.slack.listeners.common import open_topup_modal, topup_offer
from ledger.accounts import get_account
from ledger.errors import LedgerError
from ledger.topups import parse_topup


@guarded
def topup_command(
    ack: Ack,
    body: dict[str, Any],
    command: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    respond: Respond,
) -> None:
    ack()
    account = require_account(context, body, client, respond)
    if account is None or not require_admin(account, body, client, respond, "top up the wallet"):
        return
    text = (command.get("text") or "").strip()
    if not text:
        metadata = json.dumps({"channel_id": body.get("channel_id")})
        open_topup_modal(context, client, body["trigger_id"], account.id, metadata)
        return
    try:
        amount = run(context, lambda s: parse_topup(get_account(s, account.id), text))
    except LedgerError as exc:
        respond(
            response_type="ephemeral",
            **blocks.error_message(f"{exc} For example: `/topup 50`."),
        )
        return
    respond(response_type="ephemeral", **topup_offer(context, account, amount, uuid.uuid4().hex))
