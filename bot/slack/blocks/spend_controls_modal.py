"""The "Budget and alerts" modal of the App Home and `/balance`: the account's monthly
budget and its alert levels per kind, and what saving them says."""

from __future__ import annotations

from typing import Any

from bot.slack.blocks.base import (
    SPEND_CONTROLS_MODAL,
    Block,
    View,
    context_block,
    credits_text,
    plain,
)
from bot.slack.dashboard_data import Dashboard
from ledger.alert_levels import AlertLevels
from ledger.budget import BudgetView
from ledger.units import MILLI, format_credits

#: The modal's level fields: block id, the kind it sets, label, hint.
LEVEL_FIELDS = (
    ("plan_levels", "plan", "Plan credits low at (% left)", "For example 50, 20, 5"),
    ("wallet_levels", "wallet", "Wallet low under (credits)", "For example 1,000; 200"),
    ("limit_levels", "limit", "Agent limits at (% used)", "For example 50, 80, 100"),
    ("budget_levels", "budget", "Budget at (% used)", "For example 50, 80 (100% always alerts)"),
)


def level_text(kind: str, levels: AlertLevels) -> str:
    """Levels as a person types them back into the field."""
    values = getattr(levels, kind)
    if kind == "wallet":
        return "; ".join(format_credits(v) for v in values)
    return ", ".join(str(v) for v in values)


def _text_input(block_id: str, label: str, hint: str, initial: str) -> Block:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": f"{block_id}_input"}
    if initial:
        element["initial_value"] = initial
    return {
        "type": "input",
        "block_id": block_id,
        "optional": True,
        "label": plain(label),
        "hint": plain(hint),
        "element": element,
    }


def spend_controls_modal(d: Dashboard, *, metadata: str = "") -> View:
    b = d.balance
    budget = "" if b.monthly_budget is None else str(b.monthly_budget // MILLI)
    blocks: list[Block] = [
        _text_input(
            "budget",
            "Monthly budget, all agents together (credits)",
            "Whole credits, plan and wallet alike; blank for none. Reaching it stops every"
            " agent until it is raised or the month ends.",
            budget,
        ),
        context_block(f"Spent this month: {credits_text(b.month_spend)}."),
    ]
    if d.levels is not None:
        blocks += [
            _text_input(block_id, label, hint, level_text(kind, d.levels))
            for block_id, kind, label, hint in LEVEL_FIELDS
        ]
        blocks.append(
            context_block(
                "Each level alerts once when it is crossed, and again only after the balance"
                " or spend went back past it. Leave a field blank to turn that kind off."
            )
        )
    return {
        "type": "modal",
        "callback_id": SPEND_CONTROLS_MODAL,
        "private_metadata": metadata,
        "title": plain("Budget and alerts"),
        "submit": plain("Save"),
        "close": plain("Cancel"),
        "blocks": blocks,
    }


def spend_controls_saved_text(view: BudgetView, levels: AlertLevels) -> str:
    if view.monthly_budget is None:
        budget = "no monthly budget"
    else:
        budget = (
            f"a monthly budget of {credits_text(view.monthly_budget)}"
            f" ({format_credits(view.month_spend)} used this month)"
        )
        if view.reached:
            budget += ": reached, every agent is stopped"
    return (
        f":white_check_mark: Saved: {budget}. Alerts: plan credits at"
        f" {level_text('plan', levels) or 'none'} % left; wallet under"
        f" {level_text('wallet', levels) or 'none'} credits; agent limits at"
        f" {level_text('limit', levels) or 'none'} %; budget at"
        f" {level_text('budget', levels) or 'none'} %."
    )
