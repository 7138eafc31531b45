"""The auto-recharge modal: on/off, threshold, amount and monthly cap; errors are shown
on the field they concern (`response_action: errors`)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient

from bot.slack import blocks
from bot.slack.dashboard_data import card_of
from bot.slack.deps import app_context, guarded, linked_account, run
from bot.slack.home import refresh_home_tabs
from bot.slack.listeners.views.common import selected, text_value
from bot.slack.permissions import is_billing_admin
from ledger.errors import InvalidInput
from ledger.settings import FieldError, update_auto_recharge
from ledger.units import parse_money

FIELDS = ("threshold", "amount", "monthly_cap")
_NO_WAIT = timedelta(0)


def _money(text: str, currency: str) -> int | None:
    """Minor units, 0 for a blank or zero field (the ledger says whether 0 is allowed)."""
    if not text:
        return 0
    try:
        return parse_money(text, currency)
    except InvalidInput:
        try:
            if Decimal(text.strip().lstrip("$€£¥").replace(",", "")) == 0:
                return 0
        except InvalidOperation:
            pass
        raise


@guarded
def auto_recharge_submitted(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    account = linked_account(context)
    if account is None:
        ack(
            response_action="errors",
            errors={"threshold": blocks.not_linked_message(context.team_id)["text"]},
        )
        return
    if not is_billing_admin(client, account.billing_admins, body["user"]["id"]):
        refusal = blocks.refusal_text("change auto-recharge settings", account.billing_admins)
        ack(response_action="update", view=blocks.info_modal("Not allowed", refusal))
        return
    enabled = selected(view, "enabled", "enabled_input") == "on"
    values: dict[str, int | None] = {}
    errors: dict[str, str] = {}
    for name in FIELDS:
        text = text_value(view, name, f"{name}_input")
        try:
            values[name] = _money(text, account.currency)
        except InvalidInput as exc:
            errors[name] = str(exc)
        if name == "monthly_cap" and not text:
            values[name] = None  # keep the cap as it is
    if errors:
        ack(response_action="errors", errors=errors)
        return
    try:
        saved = run(
            context,
            lambda s: update_auto_recharge(
                s,
                account.id,
                enabled=enabled,
                threshold_minor=values["threshold"] or 0,
                amount_minor=values["amount"] or 0,
                monthly_cap_minor=values["monthly_cap"],
            ),
        )
    except FieldError as exc:
        ack(response_action="errors", errors={exc.field: str(exc)})
        return
    text = blocks.auto_recharge_saved_text(
        saved.enabled,
        saved.threshold_minor,
        saved.amount_minor,
        saved.monthly_cap_minor,
        account.currency,
        card_of(app_context(context), account.id),
    )
    ack(response_action="update", view=blocks.info_modal("Auto-recharge", text))
    refresh_home_tabs(app_context(context), account_id=account.id, min_interval=_NO_WAIT)
