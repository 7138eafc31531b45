"""Block Kit building blocks shared by every surface: ids, wording, small pieces."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from bot.slack.blocks.mrkdwn import Mrkdwn, md, mention, shorten, shorten_plain
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
AGENTS_USE_BALANCE_ALL = "agents_use_balance_all"
OPEN_SPEND_CONTROLS = "open_spend_controls"
SPEND_CONTROLS_MODAL = "spend_controls_modal"
ADD_CARD = "add_card"
AGENT_SELECT = "agent_select"
HOME_ALERT_CHANNEL = "home_alert_channel"
OPEN_LINK = "open_link"  # URL buttons: Slack still sends an action, which is only acked
FIX_PAYMENT = "fix_payment"
MANAGE_CARD = "manage_card"  # Stripe's Customer Portal, made when pressed
TOPUP_MODAL = "topup_modal"
AUTO_RECHARGE_MODAL = "auto_recharge_modal"
AGENT_MODAL = "agent_settings_modal"

TOPUP_PRESETS_MAJOR = (20, 50, 100, 250)

STOP_REASONS = {
    "plan_exhausted": "plan credits ran out",
    "wallet_empty": "plan credits and the wallet ran out",
    "monthly_limit": "it reached its monthly spending limit",
    "account_budget": "the account reached its monthly budget",
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
    "refund": "credits were refunded",
    "budget": "the account's monthly budget has room again",
}

RECHARGE_REASONS = {
    "missing_payment_method": "no card is saved",
    "card_declined": "the card was declined",
    "authentication_required": "the bank asks the cardholder to authenticate the payment",
    "api_error": "Stripe could not be reached",
    "monthly_cap_reached": "it reached its monthly cap",
}


#: Block Kit's limits on text (characters).
SECTION_TEXT = 3000
FIELD_TEXT = 2000
CONTEXT_TEXT = 3000
MESSAGE_TEXT = 40_000
BUTTON_TEXT = 75
OPTION_TEXT = 75
HEADER_TEXT = 150
MODAL_TITLE = 24
#: Blocks in one modal or Home tab (a message takes 50).
VIEW_BLOCKS = 100


def plain(text: str, limit: int = 2000) -> dict[str, Any]:
    """A plain_text object: shown as typed (no escaping), cut to `limit`."""
    return {"type": "plain_text", "text": shorten_plain(str(text), limit), "emoji": True}


def mrkdwn(text: str, limit: int = SECTION_TEXT) -> dict[str, Any]:
    """A mrkdwn object. This is where every string becomes mrkdwn: a plain string is
    escaped, only `Mrkdwn` (safe already) keeps its markup."""
    return {"type": "mrkdwn", "text": shorten(text, limit)}


def message(text: str, blocks: list[Block]) -> Message:
    """A message: its blocks and the fallback text (also read as mrkdwn by Slack, so
    escaped the same way)."""
    return {"text": shorten(text, MESSAGE_TEXT), "blocks": blocks}


def section(
    text: str, accessory: dict[str, Any] | None = None, block_id: str | None = None
) -> Block:
    block: Block = {"type": "section", "text": mrkdwn(text)}
    if accessory:
        block["accessory"] = accessory
    if block_id:
        block["block_id"] = block_id
    return block


def fields(*items: str) -> Block:
    return {"type": "section", "fields": [mrkdwn(i, FIELD_TEXT) for i in items]}


def context_block(*items: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(i, CONTEXT_TEXT) for i in items]}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, HEADER_TEXT)}


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
        "text": plain(label, BUTTON_TEXT),
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


def mention_list(user_ids: list[str]) -> Mrkdwn:
    return Mrkdwn(", ").join(mention(u) for u in user_ids)


def failure_reason(exc: BaseException) -> str:
    """What went wrong with Stripe, in words (an empty message says nothing)."""
    if isinstance(exc, NotImplementedError):
        return "payments are not set up on this creditbot yet"
    return str(exc) or type(exc).__name__


def refusal_text(what: str, billing_admins: list[str]) -> Mrkdwn:
    """The private answer to someone who may not do `what` (rule 11)."""
    who = md("workspace admins and owners")
    if billing_admins:
        who += md(", and the billing admins {}", mention_list(billing_admins))
    return md(
        ":lock: Only billing admins can {}: {}. Ask one of them to do it, or to make you a"
        " billing admin.",
        what,
        who,
    )


def not_linked_message(team_id: str | None) -> Message:
    text = (
        f":warning: This Slack workspace ({team_id}) is not linked to a creditbot account yet. "
        f"An operator can link it with `creditbot accounts link --account NAME --team {team_id}`."
    )
    return message(text, [section(text)])


def error_message(text: str) -> Message:
    return message(text, [section(md(":warning: {}", text))])


def info_message(text: str) -> Message:
    return message(text, [section(text)])


def info_modal(title: str, text: str, extra: list[Block] | None = None) -> View:
    return {
        "type": "modal",
        "title": plain(title, MODAL_TITLE),
        "close": plain("Close"),
        "blocks": [section(text), *(extra or [])],
    }
