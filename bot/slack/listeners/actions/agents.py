"""Agent settings (opens the modal), choosing another agent in it, and "Use balance" for
one agent or for every agent waiting for a top-up (on an agent-stopped or top-up alert and
on /balance)."""

from __future__ import annotations

from typing import Any

from slack_bolt import BoltContext, Respond
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot.slack import blocks
from bot.slack.bolt_context import account_of, in_transaction
from bot.slack.listeners.modals import agent_modal_for, agents_of
from bot.slack.replies import acting_user, tell
from ledger.agents import get_agent, update_agent, use_balance_for
from ledger.audit import Actor


def open_agent_settings(
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    respond: Respond,
) -> None:
    """The modal on the agent whose Settings button was pressed (the first one otherwise)."""
    account = account_of(context)
    agents = agents_of(context, account.id)
    if not agents:
        tell(body, client, respond, blocks.info_message(blocks.no_agents_text()))
        return
    view = agent_modal_for(agents, account.id, action.get("value"))
    client.views_open(trigger_id=body["trigger_id"], view=view)


def agent_selected(
    body: dict[str, Any], action: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """Another agent chosen in the modal: the modal shows that agent's settings."""
    account = account_of(context)
    agents = agents_of(context, account.id)
    selected = (action.get("selected_option") or {}).get("value")
    view = body["view"]
    client.views_update(
        view_id=view["id"],
        hash=view.get("hash"),
        view=agent_modal_for(agents, account.id, selected),
    )


def use_balance(
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    respond: Respond,
) -> None:
    """Switch the alert's agent to draw on the wallet; it resumes if the wallet has credits."""
    account = account_of(context)
    ref = action.get("value") or ""
    actor = Actor.slack(acting_user(body))

    def save(session: Session) -> tuple[str, str, int | None, bool, str | None]:
        was = get_agent(session, account.id, ref).stop_reason
        agent, resumed = update_agent(
            session, account.id, ref, behaviour="use_balance", actor=actor
        )
        return agent.name, agent.behaviour, agent.monthly_limit, resumed, was

    name, behaviour, limit, resumed, was = in_transaction(context, save)
    text = blocks.agent_saved_text(name, behaviour, limit, resumed, was)
    if not resumed and was:
        text += f"\n{name} is still stopped: the wallet has no credits to use. Top up to resume it."
    tell(body, client, respond, blocks.info_message(text))


def use_balance_for_all(
    body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    """Switch every Stop agent waiting for a top-up to Use balance; each resumes if the
    wallet can pay for it. Agents that stopped waiting meanwhile are left alone."""
    account = account_of(context)

    def save(session: Session) -> list[tuple[str, bool]]:
        done = use_balance_for(session, account.id, None, actor=Actor.slack(acting_user(body)))
        return [(agent.name, resumed) for agent, resumed in done]

    done = in_transaction(context, save)
    tell(body, client, respond, blocks.info_message(blocks.switched_text(done)))
