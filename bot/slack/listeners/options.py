"""Options Slack asks for while someone types in a select (`block_suggestion`): agents by
name, in the agent settings modal of an account with more agents than one select holds.

Answered in the acknowledgement itself, as Slack wants. No billing admin check: agent names
are no secret in the workspace (`/balance` shows them to anyone), and the modal that asks
is only opened for billing admins.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.slack import blocks
from bot.slack.bolt_context import account_of, in_transaction
from bot.slack.middleware import linked_account_for_options
from ledger.agents import list_agents


def agent_options(ack: Ack, payload: dict[str, Any], context: BoltContext) -> None:
    account = account_of(context)
    agents = in_transaction(context, lambda s: [(a.id, a.name) for a in list_agents(s, account.id)])
    ack(options=blocks.agent_search_options(agents, payload.get("value") or ""))


def register(app: App) -> None:
    app.options(blocks.AGENT_SELECT, middleware=[linked_account_for_options])(agent_options)
