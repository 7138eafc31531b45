"""The agent settings modal (which agent, its out-of-credits behaviour and monthly limit)
and what saving it says."""

from __future__ import annotations

from typing import Any

from bot.slack.blocks.base import (
    AGENT_MODAL,
    AGENT_SELECT,
    BEHAVIOURS,
    STOP_REASONS,
    View,
    _text,
    context_block,
    credits_text,
)
from ledger.accounts import AgentView
from ledger.units import MILLI


def agent_block_ids(agent_id: int) -> tuple[str, str]:
    """The behaviour and limit block ids for one agent: they change with the agent so Slack
    shows that agent's values instead of keeping what was typed for another."""
    return f"behaviour:{agent_id}", f"limit:{agent_id}"


def agent_modal(agents: list[AgentView], selected: AgentView, *, metadata: str = "") -> View:
    def option(a: AgentView) -> dict[str, Any]:
        return {"text": _text(a.name[:75], "plain_text"), "value": str(a.id)}

    behaviour_options = [
        {"text": _text(label, "plain_text"), "value": key} for key, label in BEHAVIOURS.items()
    ]
    behaviour_id, limit_id = agent_block_ids(selected.id)
    limit_element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "limit_input",
        "placeholder": _text("No limit", "plain_text"),
    }
    if selected.monthly_limit:
        limit_element["initial_value"] = str(selected.monthly_limit // MILLI)
    state = (
        "active"
        if selected.status == "active"
        else f"stopped: {STOP_REASONS.get(selected.stop_reason or '', selected.stop_reason)}"
    )
    return {
        "type": "modal",
        "callback_id": AGENT_MODAL,
        "private_metadata": metadata,
        "title": _text("Agent settings", "plain_text"),
        "submit": _text("Save", "plain_text"),
        "close": _text("Cancel", "plain_text"),
        "blocks": [
            {
                "type": "input",
                "block_id": "agent",
                "dispatch_action": True,
                "label": _text("Agent", "plain_text"),
                "element": {
                    "type": "static_select",
                    "action_id": AGENT_SELECT,
                    "options": [option(a) for a in agents[:100]],
                    "initial_option": option(selected),
                },
            },
            context_block(
                f"*{selected.name}* is {state}; {credits_text(selected.month_spend)} used this month."
            ),
            {
                "type": "input",
                "block_id": behaviour_id,
                "label": _text("When plan credits run out", "plain_text"),
                "element": {
                    "type": "radio_buttons",
                    "action_id": "behaviour_input",
                    "options": behaviour_options,
                    "initial_option": next(
                        o for o in behaviour_options if o["value"] == selected.behaviour
                    ),
                },
            },
            {
                "type": "input",
                "block_id": limit_id,
                "optional": True,
                "label": _text("Monthly spending limit (credits)", "plain_text"),
                "hint": _text("A whole number of credits; leave blank for no limit.", "plain_text"),
                "element": limit_element,
            },
        ],
    }


def agent_saved_text(
    name: str, behaviour: str, limit: int | None, resumed: bool, was: str | None
) -> str:
    limit_text = f"monthly limit {credits_text(limit)}" if limit else "no monthly limit"
    text = f":white_check_mark: Saved *{name}*: {BEHAVIOURS[behaviour].lower()}; {limit_text}."
    if resumed:
        text += f"\n:arrow_forward: {name} had stopped ({STOP_REASONS.get(was or '', was)}) and has resumed."
    return text


def no_agents_text() -> str:
    return "This account has no agents yet. Add one with `creditbot agents add`."
