"""Channel alerts: one renderer per `ledger.outbox.Alert` kind, each giving the alert's
text and its buttons; `alert_message` wraps them into the message Slack receives."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.slack.blocks.base import (
    AGENT_USE_BALANCE,
    FIX_PAYMENT,
    OPEN_AGENT_SETTINGS,
    OPEN_AUTO_RECHARGE,
    OPEN_SPEND_CONTROLS,
    OPEN_TOPUP,
    RECHARGE_REASONS,
    RESUME_CAUSES,
    STOP_REASONS,
    Message,
    actions,
    button,
    context_block,
    credits_text,
    day_text,
    message,
    percent,
    section,
)
from bot.slack.blocks.mrkdwn import Mrkdwn, escape, md, mention
from bot.slack.blocks.until_top_up import use_balance_buttons, waiting_of_payload, waiting_text
from ledger.outbox import Alert
from ledger.units import format_credits, format_money

Button = dict[str, Any]


@dataclass(frozen=True)
class AlertFacts:
    """An outbox alert's payload and the account facts its text needs."""

    payload: dict[str, Any]
    currency: str
    timezone: str
    next_renewal_at: datetime | None

    def get(self, key: str, default: Any = None) -> Any:
        return self.payload.get(key, default)

    @property
    def agent_name(self) -> str:
        return self.payload.get("agent_name", "An agent")

    @property
    def agent_value(self) -> str | None:
        """The agent's id as a button value, when the payload names one."""
        return str(self.payload["agent_id"]) if self.payload.get("agent_id") else None

    @property
    def renewal_text(self) -> str:
        if not self.next_renewal_at:
            return ""
        return f" Next renewal: {day_text(self.next_renewal_at, self.timezone)}."

    @property
    def money(self) -> str | None:
        """The payment's amount, when the payload carries one."""
        for key in ("amount_minor", "amount"):
            if isinstance(self.payload.get(key), int):
                return format_money(
                    self.payload[key], self.payload.get("currency") or self.currency
                )
        return None

    @property
    def credits(self) -> str | None:
        """The credits a payment added, when the payload carries them."""
        for key in ("credits", "credited", "milli_credits"):
            if isinstance(self.payload.get(key), int):
                return credits_text(self.payload[key])
        return None


#: An alert's text (mrkdwn) and its buttons.
Rendered = tuple[str, list[Button]]


def _top_up() -> Button:
    return button("Top up", OPEN_TOPUP, style="primary")


def _fix_payment() -> Button:
    """Not a link: anyone in the channel can see it, so pressing it checks that the person
    is a billing admin before a Stripe page is made, for them alone."""
    return button("Fix the payment", FIX_PAYMENT, style="primary")


def plan_low(f: AlertFacts) -> Rendered:
    left, grant = f.get("plan_balance", 0), f.get("plan_grant") or 0
    text = (
        f":warning: Plan credits are running low: {format_credits(left)}"
        f" of {credits_text(grant)} left ({percent(left, grant)}%).{f.renewal_text}"
    )
    return text, [_top_up()]


def plan_exhausted(f: AlertFacts) -> Rendered:
    text = (
        ":no_entry: Plan credits are used up. Agents set to Stop pause until the renewal;"
        f" agents set to Use balance draw on the wallet.{f.renewal_text}"
    )
    return text, [_top_up(), button("Agent settings", OPEN_AGENT_SETTINGS)]


def plan_recovered(f: AlertFacts) -> Rendered:
    left, grant = f.get("plan_balance", 0), f.get("plan_grant") or 0
    text = (
        f":white_check_mark: Plan credits are back above their alert levels: {format_credits(left)}"
        f" of {credits_text(grant)} left."
    )
    return text, []


def wallet_recovered(f: AlertFacts) -> Rendered:
    text = (
        f":white_check_mark: The wallet is back above its alert levels:"
        f" {credits_text(f.get('wallet_balance', 0))}."
    )
    return text, []


def _spend_controls() -> Button:
    return button("Budget and alerts", OPEN_SPEND_CONTROLS)


def _budget(f: AlertFacts) -> str:
    spend, budget = f.get("month_spend", 0), f.get("budget", 0)
    return f"{format_credits(spend)} of {credits_text(budget)} this month"


def budget_level(f: AlertFacts) -> Rendered:
    spend, budget = f.get("month_spend", 0), f.get("budget", 0)
    text = (
        f":warning: The agents have used {percent(spend, budget)}% of the account's monthly"
        f" budget: {_budget(f)}."
    )
    return text, [_spend_controls()]


def budget_reached(f: AlertFacts) -> Rendered:
    text = (
        f":octagonal_sign: The account reached its monthly budget ({_budget(f)}): every agent"
        " is stopped until a billing admin raises or removes the budget, or the month ends."
    )
    return text, [_spend_controls()]


def _until_top_up(f: AlertFacts, text: str, buttons: list[Button]) -> Rendered:
    """A top-up's alert, naming the Stop agents it cannot serve by itself (with buttons)."""
    waiting = waiting_of_payload(f.get("waiting_agents"))
    if not waiting:
        return text, buttons
    return escape(text) + " " + waiting_text(waiting), [*buttons, *use_balance_buttons(waiting)]


def wallet_low(f: AlertFacts) -> Rendered:
    text = (
        f":warning: The wallet is low: {credits_text(f.get('wallet_balance', 0))} left"
        f" (alert below {credits_text(f.get('threshold', 0))})."
    )
    return text, [_top_up(), button("Auto-recharge settings", OPEN_AUTO_RECHARGE)]


def _agent_settings(f: AlertFacts) -> Button:
    return button("Agent settings", OPEN_AGENT_SETTINGS, f.agent_value)


def _month_spend(f: AlertFacts) -> tuple[int, int, str]:
    """The agent's month spend, its limit, and both in words."""
    spend, limit = f.get("month_spend", 0), f.get("limit", 0)
    return spend, limit, f"{format_credits(spend)} of {credits_text(limit)}"


def limit_80(f: AlertFacts) -> Rendered:
    spend, limit, used = _month_spend(f)
    text = f":warning: *{f.agent_name}* has used {percent(spend, limit)}% of its monthly limit: {used}."
    return text, [_agent_settings(f)]


def limit_100(f: AlertFacts) -> Rendered:
    _, _, used = _month_spend(f)
    text = f":octagonal_sign: *{f.agent_name}* reached its monthly limit: {used}."
    return text, [_agent_settings(f)]


def agent_stopped(f: AlertFacts) -> Rendered:
    reason = f.get("reason") or ""
    text = f":red_circle: *{f.agent_name}* stopped: {STOP_REASONS.get(reason, reason)}."
    if reason == "account_budget":  # money would not help: the budget does
        return text, [_spend_controls(), _agent_settings(f)]
    buttons = [_top_up()]
    if reason in ("plan_exhausted", "monthly_limit") and f.agent_value:
        buttons.append(button("Use balance for this agent", AGENT_USE_BALANCE, f.agent_value))
    buttons.append(_agent_settings(f))
    return text, buttons


def agent_resumed(f: AlertFacts) -> Rendered:
    was = f.get("previous_reason") or ""
    cause = RESUME_CAUSES.get(f.get("cause") or "", f.get("cause") or "its reason cleared")
    text = (
        f":large_green_circle: *{f.agent_name}* resumed: {cause}"
        f" (it had stopped because {STOP_REASONS.get(was, was)})."
    )
    return text, []


def topup_received(f: AlertFacts) -> Rendered:
    text = ":moneybag: Top-up received"
    text += f": {f.money}" if f.money else ""
    text += f", {f.credits} added to the wallet." if f.credits else "."
    text = escape(text)
    by = f.get("requested_by")
    if isinstance(by, str) and by[:1] in ("U", "W"):
        how = " with the saved card" if f.get("source") == "saved_card" else ""
        text += md(" Paid{} by {}.", how, mention(by))
    if isinstance(f.get("wallet_balance"), int):
        text += f" The wallet now holds {credits_text(f.get('wallet_balance'))}."
    return _until_top_up(f, text, [])


def recharge_succeeded(f: AlertFacts) -> Rendered:
    text = ":white_check_mark: Auto-recharge succeeded"
    text += f": {f.money}" if f.money else ""
    text += f" ({f.credits})." if f.credits else "."
    return _until_top_up(f, text, [])


def recharge_failed(f: AlertFacts) -> Rendered:
    reason = f.get("reason") or ""
    of = f" of {f.money}" if f.money else ""
    text = (
        f":x: Auto-recharge{of} failed: {RECHARGE_REASONS.get(reason, reason or 'unknown reason')}"
    )
    text += f" ({f.get('message')})." if f.get("message") else "."
    if f.get("fix_url"):  # the ledger gives one when there is something to fix
        buttons = [_fix_payment()]
    else:
        buttons = [button("Auto-recharge settings", OPEN_AUTO_RECHARGE)]
    return text, [*buttons, _top_up()]


def auto_recharge_paused(f: AlertFacts) -> Rendered:
    failures = f.get("failures") if isinstance(f.get("failures"), int) else 3
    reason = RECHARGE_REASONS.get(f.get("reason") or "", f.get("reason"))
    text = f":pause_button: Auto-recharge paused itself after {failures} failed attempts in a row"
    text += f" (the last: {reason})." if reason else "."
    text += " Fix the card, then save the auto-recharge settings to turn it back on."
    buttons = [button("Auto-recharge settings", OPEN_AUTO_RECHARGE), _top_up()]
    if f.get("fix_url"):
        buttons.insert(0, _fix_payment())
    return text, buttons


def refund_shortfall(f: AlertFacts) -> Rendered:
    short = f.get("shortfall") or f.get("refund_shortfall") or 0
    text = (
        f":warning: A refunded top-up took back more than the wallet held:"
        f" {credits_text(short) if isinstance(short, int) else short} could not be taken back."
    )
    return text, []


def cycle_renewed(f: AlertFacts) -> Rendered:
    nxt = f.get("next_renewal_at")
    nxt_text = f" Next renewal: {day_text(datetime.fromisoformat(nxt), f.timezone)}." if nxt else ""
    text = (
        f":arrows_counterclockwise: New cycle: {credits_text(f.get('granted', 0))} of plan credits"
        f" granted ({credits_text(f.get('expired', 0))} left from the last cycle expired).{nxt_text}"
    )
    return text, []


RENDERERS: dict[Alert, Callable[[AlertFacts], Rendered]] = {
    Alert.PLAN_LOW: plan_low,
    Alert.PLAN_EXHAUSTED: plan_exhausted,
    Alert.PLAN_RECOVERED: plan_recovered,
    Alert.WALLET_LOW: wallet_low,
    Alert.WALLET_RECOVERED: wallet_recovered,
    Alert.LIMIT_LEVEL: limit_80,  # "has used N% of its monthly limit", N its level
    Alert.LIMIT_80: limit_80,
    Alert.LIMIT_100: limit_100,
    Alert.BUDGET_LEVEL: budget_level,
    Alert.BUDGET_REACHED: budget_reached,
    Alert.AGENT_STOPPED: agent_stopped,
    Alert.AGENT_RESUMED: agent_resumed,
    Alert.TOPUP_RECEIVED: topup_received,
    Alert.RECHARGE_SUCCEEDED: recharge_succeeded,
    Alert.RECHARGE_FAILED: recharge_failed,
    Alert.AUTO_RECHARGE_PAUSED: auto_recharge_paused,
    Alert.REFUND_SHORTFALL: refund_shortfall,
    Alert.CYCLE_RENEWED: cycle_renewed,
}


def unknown_kind(kind: str) -> Rendered:
    """A kind this version cannot render (written by a newer one): said plainly."""
    return f"{kind.removeprefix('alert.').replace('_', ' ').capitalize()}.", []


def alert_message(
    kind: str,
    payload: dict[str, Any],
    *,
    account_name: str,
    currency: str,
    timezone: str,
    next_renewal_at: datetime | None,
) -> Message:
    """The channel message for one outbox alert: text fallback, blocks and buttons."""
    render = RENDERERS.get(kind)  # an Alert is a str, so the outbox's kind finds it
    facts = AlertFacts(payload, currency, timezone, next_renewal_at)
    text, buttons = render(facts) if render else unknown_kind(kind)
    fallback = md("[{}] {}", account_name, _strip_marks(escape(text)))
    blocks = [section(text), context_block(f"creditbot · {account_name}")]
    if buttons:
        blocks.insert(1, actions(*buttons, block_id=f"alert:{kind.removeprefix('alert.')}"))
    return message(fallback, blocks)


def _strip_marks(text: Mrkdwn) -> Mrkdwn:
    """Without emoji and bold marks, for notifications (removing them keeps it safe)."""
    return Mrkdwn(re.sub(r":[a-z_]+: ", "", text).replace("*", ""))
