"""Pieces several listeners share: opening the modals and the top-up offer."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import BoltContext
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot.slack import blocks
from bot.slack.dashboard_data import card_of, load_dashboard
from bot.slack.deps import AccountRef, app_context, run
from ledger.accounts import balance
from ledger.models import Account


def topup_offer(
    context: BoltContext, account: AccountRef, amount_minor: int, key: str
) -> dict[str, Any]:
    """The answer to `/topup 50`: Pay, and Charge card when a card is saved."""
    return blocks.topup_offer_message(
        amount_minor,
        account.currency,
        account.credits_per_unit,
        card_of(app_context(context), account.id),
        f"slack-topup:{key}",
    )


def open_topup_modal(
    context: BoltContext, client: WebClient, trigger_id: str, account_id: int, metadata: str = ""
) -> None:
    def read(session: Session) -> tuple[str, int, int]:
        a = session.get(Account, account_id)
        return a.currency, a.topup_min_minor, a.topup_max_minor

    currency, low, high = run(context, read)
    client.views_open(
        trigger_id=trigger_id, view=blocks.topup_modal(currency, low, high, metadata=metadata)
    )


def open_auto_recharge_modal(
    context: BoltContext, client: WebClient, trigger_id: str, account_id: int
) -> None:
    board = load_dashboard(app_context(context), account_id)
    client.views_open(
        trigger_id=trigger_id,
        view=blocks.auto_recharge_modal(board, metadata=json.dumps({"account_id": account_id})),
    )


def agents_of(context: BoltContext, account_id: int) -> list:
    return run(context, lambda s: balance(s, account_id).agents)


def agent_modal_for(agents: list, account_id: int, selected_id: int | str | None) -> dict[str, Any]:
    selected = next((a for a in agents if str(a.id) == str(selected_id)), agents[0])
    return blocks.agent_modal(agents, selected, metadata=json.dumps({"account_id": account_id}))
