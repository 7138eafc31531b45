"""The agent settings modal (which agent, its out-of-credits behaviour and monthly limit)
and what saving it says. Up to 100 agents are offered in the select itself (Slack's most);
more are searched by name (`external_select`, answered by `agent_search_options`)."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any

from bot.slack.blocks.base import (
    AGENT_MODAL,
    AGENT_SELECT,
    BEHAVIOURS,
    OPTION_TEXT,
    STOP_REASONS,
    View,
    context_block,
    credits_text,
    plain,
)
from ledger.accounts import AgentView
from ledger.units import MILLI

#: Options one select may hold (Slack's limit); beyond it agents are searched by name.
MAX_OPTIONS = 100


def agent_block_ids(agent_id: int) -> tuple[str, str]:
    """The behaviour and limit block ids for one agent: they change with the agent so Slack
    shows that agent's values instead of keeping what was typed for another."""
    return f"behaviour:{agent_id}", f"limit:{agent_id}"


def agent_option(agent_id: int, name: str) -> dict[str, Any]:
    return {"text": plain(name, OPTION_TEXT), "value": str(agent_id)}


def agent_search_options(agents: Iterable[tuple[int, str]], query: str) -> list[dict[str, Any]]:
    """The agents whose name contains `query` (any case), as the options Slack shows while
    someone types in the agent select; at most Slack's 100."""
    wanted = query.strip().casefold()
    found = (agent_option(i, name) for i, name in agents if wanted in name.casefold())
    return list(islice(found, MAX_OPTIONS))


def agent_select(agents: list[AgentView], selected: AgentView) -> dict[str, Any]:
    """The agent picker: every agent when they fit in one select, else a search."""
    initial = agent_option(selected.id, selected.name)
    if len(agents) <= MAX_OPTIONS:
        return {
            "type": "static_select",
            "action_id": AGENT_SELECT,
            "options": [agent_option(a.id, a.name) for a in agents],
            "initial_option": initial,
        }
    return {
        "type": "external_select",
        "action_id": AGENT_SELECT,
        "placeholder": plain(f"Search {len(agents):,} agents by name", 150),
        "min_query_length": 0,
        "initial_option": initial,
    }


def agent_modal(agents: list[AgentView], selected: AgentView, *, metadata: str = "") -> View:
    behaviour_options = [
        {"text": plain(label, OPTION_TEXT), "value": key} for key, label in BEHAVIOURS.items()
    ]
    behaviour_id, limit_id = agent_block_ids(selected.id)
    limit_element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "limit_input",
        "placeholder": plain("No limit", 150),
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
        "title": plain("Agent settings"),
        "submit": plain("Save"),
        "close": plain("Cancel"),
        "blocks": [
            {
                "type": "input",
                "block_id": "agent",
                "dispatch_action": True,
                "label": plain("Agent"),
                "element": agent_select(agents, selected),
            },
            context_block(
                f"*{selected.name}* is {state}; {credits_text(selected.month_spend)} used this month."
            ),
            {
                "type": "input",
                "block_id": behaviour_id,
                "label": plain("When plan credits run out"),
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
                "label": plain("Monthly spending limit (credits)"),
                "hint": plain("A whole number of credits; leave blank for no limit."),
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
