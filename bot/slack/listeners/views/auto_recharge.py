"""The auto-recharge modal: on/off, threshold, amount and monthly cap; errors are shown
on the field they concern (`response_action: errors`)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext

from bot.forms import AUTO_RECHARGE_FIELDS, auto_recharge_fields
from bot.slack import blocks
from bot.slack.bolt_context import account_of, app_context, in_transaction
from bot.slack.dashboard_data import card_of
from bot.slack.listeners.views.fields import selected, text_value
from ledger.auto_recharge import update_auto_recharge
from ledger.errors import FieldError, NoSavedCard


def auto_recharge_submitted(ack: Ack, view: dict[str, Any], context: BoltContext) -> None:
    account = account_of(context)
    enabled = selected(view, "enabled", "enabled_input") == "on"
    texts = {name: text_value(view, name, f"{name}_input") for name in AUTO_RECHARGE_FIELDS}
    values, errors = auto_recharge_fields(texts, account.currency)
    if errors:
        ack(response_action="errors", errors=errors)
        return
    try:
        saved = in_transaction(
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
    except NoSavedCard:
        # Nothing is saved; the modal's own "Add a card" button opens the card setup.
        ack(response_action="errors", errors={"enabled": blocks.SAVE_A_CARD_FIRST})
        return
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
