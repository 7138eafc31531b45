"""The auto-recharge modal (on/off, threshold, add an amount or top up to a balance,
monthly cap, the card, and what a recharge would charge right now) and what saving it
says."""

from __future__ import annotations

from typing import Any

from bot.slack.blocks.base import (
    ADD_CARD,
    AUTO_RECHARGE_MODAL,
    Block,
    View,
    button,
    context_block,
    money_input_text,
    plain,
    section,
)
from bot.slack.dashboard_data import Card, Dashboard
from ledger.units import format_money

#: Turning auto-recharge on with no saved card: said on the on/off field; the modal's
#: "Add a card" button (block `card`) is right below it.
SAVE_A_CARD_FIRST = (
    "Save a card first: press “Add a card” below, then save again. Auto-recharge charges"
    " the saved card, and none is saved yet."
)


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
            "label": plain(label),
            "hint": plain(hint),
            "element": element,
        }

    on = {"text": plain("On"), "value": "on"}
    off = {"text": plain("Off"), "value": "off"}
    add = {"text": plain("Add an amount"), "value": "add"}
    target = {"text": plain("Top up to a balance"), "value": "target"}
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
            "label": plain("Auto-recharge"),
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
        {
            "type": "input",
            "block_id": "mode",
            "label": plain("Each recharge"),
            "element": {
                "type": "radio_buttons",
                "action_id": "mode_input",
                "options": [add, target],
                "initial_option": target if a.mode == "target" else add,
            },
        },
        money_field(
            "amount",
            f"Add this amount ({cur})",
            a.amount_minor,
            f"At least the threshold; between {format_money(d.topup_min_minor, cur)} and"
            f" {format_money(d.topup_max_minor, cur)}",
        ),
        money_field(
            "target",
            f"Or top the wallet back up to ({cur})",
            a.target_minor,
            "Above the threshold: each recharge charges what the wallet lacks then",
        ),
        money_field(
            "monthly_cap",
            f"At most this much a month ({cur})",
            a.monthly_cap_minor,
            "The total auto-recharged in a calendar month",
        ),
        card,
        context_block(recharge_now_text(d)),
    ]
    if a.paused:
        blocks.append(
            context_block("Paused after 3 failed attempts in a row: saving it on resumes it.")
        )
    return {
        "type": "modal",
        "callback_id": AUTO_RECHARGE_MODAL,
        "private_metadata": metadata,
        "title": plain("Auto-recharge"),
        "submit": plain("Save"),
        "close": plain("Cancel"),
        "blocks": blocks,
    }


def recharge_now_text(d: Dashboard) -> str:
    """What a recharge would charge right now, with the saved settings."""
    now, cur = d.recharge_now, d.currency
    if now is None or not d.auto.enabled:
        return "A recharge is made only while auto-recharge is on."
    if now.amount_minor is not None:
        why = ""
        if now.raised:
            why = (
                f" (more than the {format_money(d.auto.amount_minor, cur)} set: what lifts the"
                " wallet back to the threshold"
            )
            why += ", as far as the monthly cap allows)" if now.capped else ")"
        elif now.capped:
            why = " (all the monthly cap still allows)"
        return f"A recharge now would charge {format_money(now.amount_minor, cur)}{why}."
    if now.skipped == "not_needed":
        return "The wallet is at its target balance: a recharge now would charge nothing."
    return "The monthly cap is reached: no recharge until next month."


def auto_recharge_saved_text(
    enabled: bool,
    threshold_minor: int,
    amount_minor: int,
    cap_minor: int,
    currency: str,
    card: Card | None,
    *,
    target_minor: int | None = None,
) -> str:
    """`target_minor` set: the wallet is topped back up to it rather than by an amount."""
    if not enabled:
        return ":white_check_mark: Auto-recharge is *off*. The wallet is only topped up by hand."
    what = (
        f"{format_money(amount_minor, currency)} is"
        if target_minor is None
        else f"what tops it back up to {format_money(target_minor, currency)} is"
    )
    text = (
        f":white_check_mark: Auto-recharge is *on*: when the wallet drops below"
        f" {format_money(threshold_minor, currency)}, {what}"
        f" charged to {card.label if card else 'the saved card'}, at most"
        f" {format_money(cap_minor, currency)} a month."
    )
    if target_minor is None and amount_minor < threshold_minor:
        text += (
            f"\n:information_source: {format_money(amount_minor, currency)} cannot lift an empty"
            f" wallet back to {format_money(threshold_minor, currency)}: a recharge then charges"
            " what does, so one recharge is enough."
        )
    if card is None:
        text += (
            "\n:warning: No card is saved yet: add one, or recharges fail with"
            " `missing_payment_method`."
        )
    return text
