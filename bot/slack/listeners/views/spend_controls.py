"""The "Budget and alerts" modal: the monthly budget and the alert levels, each read with
the ledger's own parser; a mistake is shown on its field, and nothing is saved."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext
from sqlalchemy.orm import Session

from bot.slack import blocks
from bot.slack.bolt_context import account_of, in_transaction
from bot.slack.listeners.views.fields import text_value
from bot.slack.replies import acting_user
from ledger.accounts import get_account
from ledger.alert_levels import AlertLevels, parse_percents, parse_wallet_levels, set_alert_levels
from ledger.audit import Actor
from ledger.budget import BudgetView, budget_view, parse_budget, set_budget
from ledger.errors import FieldError


def spend_controls_submitted(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
) -> None:
    account = account_of(context)
    errors: dict[str, str] = {}
    budget: int | None = None
    try:
        budget = parse_budget(text_value(view, "budget", "budget_input"))
    except FieldError as exc:
        errors["budget"] = str(exc)
    levels: dict[str, tuple[int, ...] | None] = {}
    present = (view.get("state") or {}).get("values") or {}
    for block_id, kind, _, _ in blocks.LEVEL_FIELDS:
        if block_id not in present:  # an older modal without the level fields
            levels[kind] = None
            continue
        text = text_value(view, block_id, f"{block_id}_input")
        try:
            levels[kind] = (
                parse_wallet_levels(text) if kind == "wallet" else parse_percents(text, kind)
            )
        except FieldError as exc:
            errors[block_id] = str(exc)
    if errors:
        ack(response_action="errors", errors=errors)
        return
    actor = Actor.slack(acting_user(body))

    def save(session: Session) -> tuple[BudgetView, AlertLevels]:
        saved = set_alert_levels(session, account.id, actor=actor, **levels)
        if budget == get_account(session, account.id).monthly_budget:
            return budget_view(session, account.id), saved  # unchanged: nothing resumes
        return set_budget(session, account.id, budget, actor=actor), saved

    try:
        view_after, saved = in_transaction(context, save)
    except FieldError as exc:  # the levels were checked above: only the budget is left
        ack(response_action="errors", errors={"budget": str(exc)})
        return
    text = blocks.spend_controls_saved_text(view_after, saved)
    ack(response_action="update", view=blocks.info_modal("Budget and alerts", text))
