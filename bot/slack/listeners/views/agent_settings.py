"""The agent settings modal: behaviour (Stop / Use balance) and monthly limit (blank for
none). Saving resumes the agent where rule 6 says so, and says so."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext
from sqlalchemy.orm import Session

from bot.slack import blocks
from bot.slack.bolt_context import account_of, in_transaction
from bot.slack.listeners.views.fields import block_with_prefix, selected, text_value
from bot.slack.replies import acting_user
from ledger.agents import get_agent, parse_limit, update_agent
from ledger.audit import Actor
from ledger.errors import InvalidInput, NotFound


def agent_settings_submitted(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
) -> None:
    account = account_of(context)
    agent_ref = selected(view, "agent", blocks.AGENT_SELECT)
    behaviour_block = block_with_prefix(view, "behaviour:")
    limit_block = block_with_prefix(view, "limit:")
    if not agent_ref or behaviour_block is None or limit_block is None:
        ack(response_action="errors", errors={"agent": "Choose an agent."})
        return
    if behaviour_block != f"behaviour:{agent_ref}":
        ack(
            response_action="errors",
            errors={"agent": "That agent's settings are still loading: try again."},
        )
        return
    errors: dict[str, str] = {}
    behaviour = selected(view, behaviour_block, "behaviour_input")
    if behaviour not in blocks.BEHAVIOURS:
        errors[behaviour_block] = "Choose what the agent does when plan credits run out."
    try:
        limit = parse_limit(text_value(view, limit_block, "limit_input"))
    except InvalidInput as exc:
        errors[limit_block] = str(exc)
    if errors:
        ack(response_action="errors", errors=errors)
        return

    def save(session: Session) -> tuple[str, str, int | None, bool, str | None]:
        was = get_agent(session, account.id, agent_ref).stop_reason
        agent, resumed = update_agent(
            session, account.id, agent_ref, behaviour=behaviour, monthly_limit=limit,
            actor=Actor.slack(acting_user(body)),
        )  # fmt: skip
        return agent.name, agent.behaviour, agent.monthly_limit, resumed, was

    try:
        name, behaviour, limit, resumed, was = in_transaction(context, save)
    except NotFound as exc:
        ack(response_action="errors", errors={"agent": str(exc)})
        return
    except InvalidInput as exc:
        ack(response_action="errors", errors={limit_block: str(exc)})
        return
    text = blocks.agent_saved_text(name, behaviour, limit, resumed, was)
    ack(response_action="update", view=blocks.info_modal("Agent settings", text))
