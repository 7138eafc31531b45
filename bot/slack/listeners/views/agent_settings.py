"""The agent settings modal: behaviour (Stop / Use balance) and monthly limit (blank for
none). Saving resumes the agent where rule 6 says so, and says so."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot.slack import blocks
from bot.slack.deps import app_context, guarded, linked_account, run
from bot.slack.home import refresh_home_tabs
from bot.slack.listeners.views.common import block_with_prefix, selected, text_value
from bot.slack.permissions import is_billing_admin
from ledger.agents import get_agent, parse_limit, update_agent
from ledger.errors import InvalidInput, NotFound


@guarded
def agent_settings_submitted(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    account = linked_account(context)
    if account is None:
        ack(
            response_action="errors",
            errors={"agent": blocks.not_linked_message(context.team_id)["text"]},
        )
        return
    if not is_billing_admin(client, account.billing_admins, body["user"]["id"]):
        refusal = blocks.refusal_text("change agent settings", account.billing_admins)
        ack(response_action="update", view=blocks.info_modal("Not allowed", refusal))
        return
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
            session, account.id, agent_ref, behaviour=behaviour, monthly_limit=limit
        )
        return agent.name, agent.behaviour, agent.monthly_limit, resumed, was

    try:
        name, behaviour, limit, resumed, was = run(context, save)
    except NotFound as exc:
        ack(response_action="errors", errors={"agent": str(exc)})
        return
    except InvalidInput as exc:
        ack(response_action="errors", errors={limit_block: str(exc)})
        return
    text = blocks.agent_saved_text(name, behaviour, limit, resumed, was)
    ack(response_action="update", view=blocks.info_modal("Agent settings", text))
    refresh_home_tabs(app_context(context), account_id=account.id, min_interval=timedelta(0))
