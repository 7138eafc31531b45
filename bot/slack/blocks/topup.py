"""Top-ups: the `/topup` answer, the modal, Checkout links and one-click charges."""

from __future__ import annotations

import json
from typing import Any

from bot.slack.blocks.base import (
    OPEN_LINK,
    OPTION_TEXT,
    RECHARGE_REASONS,
    TOPUP_CHARGE_CARD,
    TOPUP_MODAL,
    TOPUP_PAY,
    TOPUP_PRESETS_MAJOR,
    Block,
    Message,
    View,
    actions,
    button,
    credits_text,
    message,
    mrkdwn,
    plain,
    section,
)
from bot.slack.dashboard_data import Card
from ledger.units import MILLI, currency_exponent, format_money


def charge_confirm(amount: str, card: Card) -> dict[str, Any]:
    return {
        "title": plain("Charge the saved card?", 100),
        "text": mrkdwn(
            f"{amount} will be charged to {card.label} now and added to the wallet.", 300
        ),
        "confirm": plain(f"Charge {amount}", 30),
        "deny": plain("Cancel", 30),
    }


def topup_value(amount_minor: int, key: str | None = None) -> str:
    payload: dict[str, Any] = {"amount_minor": amount_minor}
    if key:
        payload["key"] = key
    return json.dumps(payload, separators=(",", ":"))


def topup_offer_blocks(
    amount_minor: int, currency: str, credits_per_unit: int, card: Card | None, key: str
) -> list[Block]:
    amount = format_money(amount_minor, currency)
    milli = amount_minor * credits_per_unit * MILLI // 10 ** currency_exponent(currency)
    buttons = [button(f"Pay {amount}", TOPUP_PAY, topup_value(amount_minor), style="primary")]
    if card is not None:
        buttons.append(
            button(
                f"Charge card •••• {card.last4}",
                TOPUP_CHARGE_CARD,
                topup_value(amount_minor, key),
                confirm=charge_confirm(amount, card),
            )
        )
    lines = [
        f"*Top up {amount}*: {credits_text(milli)} go into the wallet once Stripe confirms the payment."
    ]
    lines.append(
        f"Pay on a Stripe page, or charge the saved card {card.label} in one click."
        if card
        else "Pay on a Stripe page (the card is saved for auto-recharge)."
    )
    return [section("\n".join(lines)), actions(*buttons, block_id="topup_offer")]


def topup_offer_message(
    amount_minor: int, currency: str, credits_per_unit: int, card: Card | None, key: str
) -> Message:
    amount = format_money(amount_minor, currency)
    return message(
        f"Top up {amount}: press Pay {amount} to open the Stripe payment page.",
        topup_offer_blocks(amount_minor, currency, credits_per_unit, card, key),
    )


def checkout_ready_blocks(amount: str, url: str) -> list[Block]:
    return [
        section(
            f"Your Stripe payment page for *{amount}* is ready. The wallet is credited as soon as"
            " Stripe confirms the payment.",
            accessory=button(f"Open payment page ({amount})", OPEN_LINK, url=url, style="primary"),
        )
    ]


def checkout_ready_message(amount: str, url: str) -> Message:
    return message(
        f"Your Stripe payment page for {amount} is ready: {url}",
        checkout_ready_blocks(amount, url),
    )


def _field(result: object, name: str) -> Any:
    if isinstance(result, dict):
        return result.get(name)
    return getattr(result, name, None)


def charge_started_text(amount: str, card: Card | None, result: object) -> str:
    """What the payments part answered to a one-click top-up, in words."""
    status = _field(result, "status")
    label = card.label if card else "the saved card"
    if status in ("failed", "requires_payment_method", "requires_action", "canceled"):
        reason = _field(result, "reason")
        why = RECHARGE_REASONS.get(reason or "", reason or status)
        message = _field(result, "message")
        return f":x: Charging {amount} to {label} failed: {why}" + (
            f" ({message})." if message else "."
        )
    if status == "succeeded":
        credited, wallet = _field(result, "credited"), _field(result, "wallet_balance")
        if isinstance(credited, int) and credited > 0:
            text = f":white_check_mark: {amount} charged to {label}: {credits_text(credited)} added to the wallet"
            if isinstance(wallet, int):
                text += f", which now holds {credits_text(wallet)}"
            return text + "."
        return f":white_check_mark: {amount} charged to {label}. The wallet is credited as Stripe confirms it."
    return (
        f":hourglass_flowing_sand: Charging {amount} to {label}. The wallet is credited as soon"
        " as Stripe confirms the payment."
    )


def topup_modal(
    currency: str, low_minor: int, high_minor: int, *, metadata: str = "", error: str | None = None
) -> View:
    scale = 10 ** currency_exponent(currency)
    presets = [p * scale for p in TOPUP_PRESETS_MAJOR if low_minor <= p * scale <= high_minor]
    blocks: list[Block] = []
    if presets:
        blocks.append(
            {
                "type": "input",
                "block_id": "preset",
                "optional": True,
                "label": plain("Amount"),
                "element": {
                    "type": "radio_buttons",
                    "action_id": "preset_input",
                    "options": [
                        {
                            "text": plain(format_money(p, currency), OPTION_TEXT),
                            "value": str(p),
                        }
                        for p in presets
                    ],
                },
            }
        )
    blocks.append(
        {
            "type": "input",
            "block_id": "amount",
            "optional": bool(presets),
            "label": plain("Other amount" if presets else "Amount"),
            "hint": plain(
                f"Between {format_money(low_minor, currency)} and {format_money(high_minor, currency)}."
            ),
            "element": {
                "type": "plain_text_input",
                "action_id": "amount_input",
                "placeholder": plain("for example 50.00", 150),
            },
        }
    )
    return {
        "type": "modal",
        "callback_id": TOPUP_MODAL,
        "private_metadata": metadata,
        "title": plain("Top up the wallet"),
        "submit": plain("Continue"),
        "close": plain("Cancel"),
        "blocks": blocks,
    }
