"""Block Kit building blocks shared by every surface: ids, wording, small pieces."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ledger.cycles import zone
from ledger.units import currency_exponent, format_credits

Block = dict[str, Any]
View = dict[str, Any]
Message = dict[str, Any]

# action_id and callback_id values the listeners are registered on.
OPEN_TOPUP = "open_topup"
OPEN_AUTO_RECHARGE = "open_auto_recharge"
OPEN_AGENT_SETTINGS = "open_agent_settings"
TOPUP_PAY = "topup_pay"
TOPUP_CHARGE_CARD = "topup_charge_card"
AGENT_USE_BALANCE = "agent_use_balance"
ADD_CARD = "add_card"
AGENT_SELECT = "agent_select"
HOME_ALERT_CHANNEL = "home_alert_channel"
OPEN_LINK = "open_link"  # URL buttons: Slack still sends an action, which is only acked
TOPUP_MODAL = "topup_modal"
AUTO_RECHARGE_MODAL = "auto_recharge_modal"
AGENT_MODAL = "agent_settings_modal"

TOPUP_PRESETS_MAJOR = (20, 50, 100, 250)

STOP_REASONS = {
    "plan_exhausted": "plan credits ran out",
    "wallet_empty": "plan credits and the wallet ran out",
    "monthly_limit": "it reached its monthly spending limit",
}

BEHAVIOURS = {
    "stop": "Stop when plan credits run out",
    "use_balance": "Use the wallet when plan credits run out",
}

RESUME_CAUSES = {
    "renewal": "the plan renewed",
    "wallet_credit": "the wallet was topped up",
    "new_month": "a new month started",
    "settings": "its settings were changed",
}

RECHARGE_REASONS = {
    "missing_payment_method": "no card is saved",
    "card_declined": "the card was declined",
    "authentication_required": "the bank asks the cardholder to authenticate the payment",
    "api_error": "Stripe could not be reached",
    "monthly_cap_reached": "it reached its monthly cap",
}


def _text(text: str, kind: str = "mrkdwn") -> dict[str, Any]:
    obj: dict[str, Any] = {"type": kind, "text": text}
    if kind == "plain_text":
        obj["emoji"] = True
    return obj


def section(
    text: str, accessory: dict[str, Any] | None = None, block_id: str | None = None
) -> Block:
    block: Block = {"type": "section", "text": _text(text)}
    if accessory:
        block["accessory"] = accessory
    if block_id:
        block["block_id"] = block_id
    return block


def fields(*items: str) -> Block:
    return {"type": "section", "fields": [_text(i) for i in items]}


def context_block(*items: str) -> Block:
    return {"type": "context", "elements": [_text(i) for i in items]}


def header(text: str) -> Block:
    return {"type": "header", "text": _text(text[:150], "plain_text")}


def divider() -> Block:
    return {"type": "divider"}


def button(
    label: str,
    action_id: str,
    value: str | None = None,
    *,
    style: str | None = None,
    url: str | None = None,
    confirm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": _text(label[:75], "plain_text"),
        "action_id": action_id,
    }
    if value is not None:
        element["value"] = value
    if style:
        element["style"] = style
    if url:
        element["url"] = url
    if confirm:
        element["confirm"] = confirm
    return element


def actions(*elements: dict[str, Any], block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": list(elements)}
    if block_id:
        block["block_id"] = block_id
    return block


def credits_text(milli: int) -> str:
    return f"{format_credits(milli)} credits"


def day_text(moment: datetime | date, tz: str, *, year: bool = True) -> str:
    """'1 Dec 2026' (or '1 Dec') in the account's time zone."""
    day = moment.astimezone(zone(tz)).date() if isinstance(moment, datetime) else moment
    return f"{day.day} {day:%b %Y}" if year else f"{day.day} {day:%b}"


def money_input_text(minor: int, currency: str) -> str:
    """Money as a person types it back into a field: 1000 USD -> '10.00'."""
    exponent = currency_exponent(currency)
    whole, frac = divmod(minor, 10**exponent)
    return f"{whole}.{frac:0{exponent}d}" if exponent else str(whole)


def bar(part: int, whole: int, width: int = 10) -> str:
    """A text progress bar: `████████░░`."""
    filled = 0 if whole <= 0 else min(width, round(width * max(0, part) / whole))
    return "█" * filled + "░" * (width - filled)


def percent(part: int, whole: int) -> int:
    return 0 if whole <= 0 else part * 100 // whole


def mention_list(user_ids: list[str]) -> str:
    return ", ".join(f"<@{u}>" for u in user_ids)


def failure_reason(exc: BaseException) -> str:
    """What went wrong with Stripe, in words (an empty message says nothing)."""
    if isinstance(exc, NotImplementedError):
        return "payments are not set up on this creditbot yet"
    return str(exc) or type(exc).__name__


def refusal_text(what: str, billing_admins: list[str]) -> str:
    """The private answer to someone who may not do `what` (rule 11)."""
    who = "workspace admins and owners"
    if billing_admins:
        who += f", and the billing admins {mention_list(billing_admins)}"
    return f":lock: Only billing admins can {what}: {who}. Ask one of them to do it, or to make you a billing admin."


def not_linked_message(team_id: str | None) -> Message:
    text = (
        f":warning: This Slack workspace ({team_id}) is not linked to a creditbot account yet. "
        f"An operator can link it with `creditbot accounts link --account NAME --team {team_id}`."
    )
    return {"text": text, "blocks": [section(text)]}


def error_message(text: str) -> Message:
    return {"text": text, "blocks": [section(f":warning: {text}")]}


def info_message(text: str) -> Message:
    return {"text": text, "blocks": [section(text)]}


def info_modal(title: str, text: str, extra: list[Block] | None = None) -> View:
    return {
        "type": "modal",
        "title": _text(title[:24], "plain_text"),
        "close": _text("Close", "plain_text"),
        "blocks": [section(text), *(extra or [])],
    }
