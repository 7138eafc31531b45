"""Agent settings (opens the modal), choosing another agent in it, and "Use balance for
this agent" on an agent-stopped alert."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot.slack import blocks
from bot.slack.deps import guarded, require_account, require_admin, run, tell
from bot.slack.listeners.common import agent_modal_for, agents_of
from ledger.agents import update_agent


@guarded
def open_agent_settings(
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
        account, body, client, respond, "change agent settings"
    ):
        return
    agents = agents_of(context, account.id)
    if not agents:
        tell(body, client, respond, blocks.info_message(blocks.no_agents_text()))
        return
    view = agent_modal_for(agents, account.id, action.get("value"))
    client.views_open(trigger_id=body["trigger_id"], view=view)


@guarded
def agent_selected(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    ack()
    account = require_account(context, body, client, None)
    if account is None:
        return
    agents = agents_of(context, account.id)
    selected = (action.get("selected_option") or {}).get("value")
    view = body["view"]
    client.views_update(
        view_id=view["id"],
        hash=view.get("hash"),
        view=agent_modal_for(agents, account.id, selected),
    )


@guarded
def use_balance(
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
        account, body, client, respond, "change agent settings"
    ):
        return
    ref = action.get("value") or ""

    def work(session: Any) -> tuple[str, str, int | None, bool, str | None]:
        from ledger.agents import get_agent

        was = get_agent(session, account.id, ref).stop_reason
        agent, resumed = update_agent(session, account.id, ref, behaviour="use_balance")
        return agent.name, agent.behaviour, agent.monthly_limit, resumed, was

    name, behaviour, limit, resumed, was = run(context, work)
    text = blocks.agent_saved_text(name, behaviour, limit, resumed, was)
    if not resumed and was:
        text += f"\n{name} is still stopped: the wallet has no credits to use. Top up to resume it."
    tell(body, client, respond, blocks.info_message(text))
