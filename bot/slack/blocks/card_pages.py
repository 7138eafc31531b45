"""Stripe pages that add or replace the saved card, made when a billing admin presses a
button: Add a card (auto-recharge modal), Fix the payment (a failed recharge alert) and
Manage card (/balance and the Home tab: Stripe's Customer Portal). Each page is the
presser's own, shown only to them, and expires soon (the portal's within minutes)."""

from __future__ import annotations

from bot.slack.blocks.base import (
    OPEN_LINK,
    RECHARGE_REASONS,
    Message,
    button,
    day_text,
    message,
    section,
)
from bot.slack.dashboard_data import RechargeAttempt

#: An attempt that did not fail, in words.
LAST_ATTEMPT = {"succeeded": "succeeded", "pending": "is still in progress"}
#: What a fix page does, by the reason the last recharge failed.
FIX_PAGES = {
    "setup": "Add or replace the card on Stripe's page",
    "payment": "Pay the recharge on Stripe's page (your bank may ask you to confirm it)",
}


def card_page_message(url: str) -> Message:
    """Pushed over the auto-recharge modal: the Stripe page that saves a card."""
    return message(
        f"Add a card on Stripe: {url}",
        [
            section(
                "Add or replace the card on Stripe's page. It is saved for auto-recharge"
                " and one-click top-ups once Stripe confirms it.",
                accessory=button("Open Stripe", OPEN_LINK, url=url, style="primary"),
            )
        ],
    )


def fix_page_message(mode: str, url: str, reason: str | None) -> Message:
    """The private answer to a billing admin who pressed Fix the payment."""
    why = RECHARGE_REASONS.get(reason or "", reason or "it failed")
    text = (
        f"The last auto-recharge failed: {why}. {FIX_PAGES[mode]}: the card is saved for"
        " auto-recharge once Stripe confirms it. This page is yours alone and expires"
        " within the hour; press Fix the payment again for a new one."
    )
    return message(
        f"{text} {url}",
        [section(text, accessory=button("Open Stripe", OPEN_LINK, url=url, style="primary"))],
    )


def nothing_to_fix_message(attempt: RechargeAttempt | None, timezone: str) -> Message:
    """Fix the payment pressed when the account's last recharge did not fail."""
    if attempt is None:
        text = "There is nothing to fix: this account has no auto-recharge attempt."
    else:
        when = f" of {day_text(attempt.at, timezone)}" if attempt.at else ""
        state = LAST_ATTEMPT.get(attempt.status, attempt.status)
        text = (
            f"There is nothing to fix: the last auto-recharge attempt{when} {state}."
            " To replace the card anyway, use Auto-recharge settings → Replace card."
        )
    return message(text, [section(text)])


def portal_page_message(url: str) -> Message:
    """The private answer to a billing admin who pressed Manage card."""
    text = (
        "Manage the card, the billing email and past invoices and receipts on Stripe's page."
        " A card saved there is the one auto-recharge and one-click top-ups use. The page is"
        " yours alone and expires in a few minutes; press Manage card again for a new one."
    )
    return message(
        f"{text} {url}",
        [section(text, accessory=button("Open Stripe", OPEN_LINK, url=url, style="primary"))],
    )
