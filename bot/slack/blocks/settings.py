"""The auto-recharge and agent settings modals, and what saving them says."""

from __future__ import annotations

from typing import Any

from bot.slack.blocks.base import (
    ADD_CARD,
    AGENT_MODAL,
    AGENT_SELECT,
    AUTO_RECHARGE_MODAL,
    BEHAVIOURS,
    STOP_REASONS,
    Block,
    View,
    _text,
    button,
    context_block,
    credits_text,
    money_input_text,
    section,
)
from bot.slack.dashboard_data import Card, Dashboard
from ledger.accounts import AgentView
from ledger.units import MILLI, format_money


def auto_recharge_modal(d: Dashboard, *, metadata: str = "") -> View:
    a, cur = d.auto, d.currency

    def money_field(block_id: str, label: str, minor: int, hint: str) -> Block:
        element: dict[str, Any] = {"type": "plain_text_input", "action_id": f"{block_id}_input"}
        if minor:
            element["initial_value"] = money_input_text(minor, cur)
        return {
            "type": "input",
            "block_id": block_id,
            "optional": True,
            "label": _text(label, "plain_text"),
            "hint": _text(hint, "plain_text"),
            "element": element,
        }

    on = {"text": _text("On", "plain_text"), "value": "on"}
    off = {"text": _text("Off", "plain_text"), "value": "off"}
    card = (
        section(
            f"Card: *{d.card.label}*", accessory=button("Replace card", ADD_CARD), block_id="card"
        )
        if d.card
        else section(
            "No saved card: auto-recharge fails until one is added.",
            accessory=button("Add a card", ADD_CARD, style="primary"),
            block_id="card",
        )
    )
    blocks = [
        {
            "type": "input",
            "block_id": "enabled",
            "label": _text("Auto-recharge", "plain_text"),
            "element": {
                "type": "radio_buttons",
                "action_id": "enabled_input",
                "options": [on, off],
                "initial_option": on if a.enabled else off,
            },
        },
        money_field(
            "threshold",
            f"When the wallet drops below ({cur})",
            a.threshold_minor,
            "For example 10.00",
        ),
        money_field(
            "amount",
            f"Add this amount ({cur})",
            a.amount_minor,
            f"Between {format_money(d.topup_min_minor, cur)} and {format_money(d.topup_max_minor, cur)}",
        ),
        money_field(
            "monthly_cap",
            f"At most this much a month ({cur})",
            a.monthly_cap_minor,
            "The total auto-recharged in a calendar month",
        ),
        card,
    ]
    if a.paused:
        blocks.append(
            context_block("Paused after 3 failed attempts in a row: saving it on resumes it.")
        )
    return {
        "type": "modal",
        "callback_id": AUTO_RECHARGE_MODAL,
        "private_metadata": metadata,
        "title": _text("Auto-recharge", "plain_text"),
        "submit": _text("Save", "plain_text"),
        "close": _text("Cancel", "plain_text"),
        "blocks": blocks,
    }


def auto_recharge_saved_text(
    enabled: bool,
    threshold_minor: int,
    amount_minor: int,
    cap_minor: int,
    currency: str,
    card: Card | None,
) -> str:
    if not enabled:
        return ":white_check_mark: Auto-recharge is *off*. The wallet is only topped up by hand."
    text = (
        f":white_check_mark: Auto-recharge is *on*: when the wallet drops below"
        f" {format_money(threshold_minor, currency)}, {format_money(amount_minor, currency)} is"
        f" charged to {card.label if card else 'the saved card'}, at most"
        f" {format_money(cap_minor, currency)} a month."
    )
    if card is None:
        text += (
            "\n:warning: No card is saved yet: add one, or recharges fail with"
            " `missing_payment_method`."
        )
    return text


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
