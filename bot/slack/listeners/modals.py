"""Opening creditbot's modals: top-up, auto-recharge and agent settings."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import BoltContext
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot.slack import blocks
from bot.slack.bolt_context import app_context, in_transaction
from bot.slack.dashboard_data import load_dashboard
from ledger.accounts import AgentView, balance
from ledger.models import Account


def open_topup_modal(
    context: BoltContext, client: WebClient, trigger_id: str, account_id: int, metadata: str = ""
) -> None:
    def read(session: Session) -> tuple[str, int, int]:
        a = session.get(Account, account_id)
        return a.currency, a.topup_min_minor, a.topup_max_minor

    currency, low, high = in_transaction(context, read)
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


def agents_of(context: BoltContext, account_id: int) -> list[AgentView]:
    return in_transaction(context, lambda s: balance(s, account_id).agents)


def agent_modal_for(
    agents: list[AgentView], account_id: int, selected_id: int | str | None
) -> dict[str, Any]:
    """The agent settings modal on `selected_id` (the first agent when none is chosen)."""
    selected = next((a for a in agents if str(a.id) == str(selected_id)), agents[0])
    return blocks.agent_modal(agents, selected, metadata=json.dumps({"account_id": account_id}))
