"""The answer to an amount (`/topup 50`, or the top-up modal): Pay, and Charge card when a
card is saved."""

from __future__ import annotations

from typing import Any

from slack_bolt import BoltContext

from bot.slack import blocks
from bot.slack.bolt_context import AccountRef, app_context
from bot.slack.dashboard_data import card_of


def topup_offer(
    context: BoltContext, account: AccountRef, amount_minor: int, key: str
) -> dict[str, Any]:
    return blocks.topup_offer_message(
        amount_minor,
        account.currency,
        account.credits_per_unit,
        card_of(app_context(context), account.id),
        f"slack-topup:{key}",
    )
