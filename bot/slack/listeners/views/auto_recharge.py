"""The auto-recharge modal: on/off, threshold, add an amount or top up to a balance, and
the monthly cap; errors are shown on the field they concern (`response_action: errors`)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext

from bot.forms import AUTO_RECHARGE_FIELDS, auto_recharge_fields, recharge_target_field
from bot.slack import blocks
from bot.slack.bolt_context import account_of, app_context, in_transaction
from bot.slack.dashboard_data import card_of
from bot.slack.listeners.views.fields import selected, text_value
from bot.slack.replies import acting_user
from ledger.audit import Actor
from ledger.auto_recharge import update_auto_recharge
from ledger.errors import FieldError, NoSavedCard


def auto_recharge_submitted(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
) -> None:
    account = account_of(context)
    enabled = selected(view, "enabled", "enabled_input") == "on"
    mode = selected(view, "mode", "mode_input") or "add"
    texts = {name: text_value(view, name, f"{name}_input") for name in AUTO_RECHARGE_FIELDS}
    values, errors = auto_recharge_fields(texts, account.currency)
    target, target_error = recharge_target_field(
        text_value(view, "target", "target_input"), account.currency
    )
    if target_error:
        errors["target"] = target_error
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
                mode=mode,
                target_minor=target or 0,
                actor=Actor.slack(acting_user(body)),
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
        target_minor=saved.target_minor if saved.mode == "target" else None,
    )
    ack(response_action="update", view=blocks.info_modal("Auto-recharge", text))
