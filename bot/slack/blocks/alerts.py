"""Channel alerts, one per outbox kind, with their buttons."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bot.slack.blocks.base import (
    AGENT_USE_BALANCE,
    OPEN_AGENT_SETTINGS,
    OPEN_AUTO_RECHARGE,
    OPEN_LINK,
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
    percent,
    section,
)
from ledger.outbox import Alert
from ledger.units import format_credits, format_money


def _payload_money(payload: dict[str, Any], currency: str) -> str | None:
    for key in ("amount_minor", "amount"):
        if isinstance(payload.get(key), int):
            return format_money(payload[key], payload.get("currency") or currency)
    return None


def _payload_credits(payload: dict[str, Any]) -> str | None:
    for key in ("credits", "credited", "milli_credits"):
        if isinstance(payload.get(key), int):
            return credits_text(payload[key])
    return None


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
    p = payload
    name = p.get("agent_name", "An agent")
    renewal = f" Next renewal: {day_text(next_renewal_at, timezone)}." if next_renewal_at else ""
    top_up = button("Top up", OPEN_TOPUP, style="primary")
    agent_value = str(p["agent_id"]) if p.get("agent_id") else None
    buttons: list[dict[str, Any]] = []
    if kind == Alert.PLAN_LOW:
        grant = p.get("plan_grant") or 0
        text = (
            f":warning: Plan credits are running low: {format_credits(p.get('plan_balance', 0))}"
            f" of {credits_text(grant)} left ({percent(p.get('plan_balance', 0), grant)}%).{renewal}"
        )
        buttons = [top_up]
    elif kind == Alert.PLAN_EXHAUSTED:
        text = (
            ":no_entry: Plan credits are used up. Agents set to Stop pause until the renewal;"
            f" agents set to Use balance draw on the wallet.{renewal}"
        )
        buttons = [top_up, button("Agent settings", OPEN_AGENT_SETTINGS)]
    elif kind == Alert.WALLET_LOW:
        text = (
            f":warning: The wallet is low: {credits_text(p.get('wallet_balance', 0))} left"
            f" (alert below {credits_text(p.get('threshold', 0))})."
        )
        buttons = [top_up, button("Auto-recharge settings", OPEN_AUTO_RECHARGE)]
    elif kind in (Alert.LIMIT_80, Alert.LIMIT_100):
        spend, limit = p.get("month_spend", 0), p.get("limit", 0)
        if kind == Alert.LIMIT_80:
            text = f":warning: *{name}* has used {percent(spend, limit)}% of its monthly limit: {format_credits(spend)} of {credits_text(limit)}."
        else:
            text = f":octagonal_sign: *{name}* reached its monthly limit: {format_credits(spend)} of {credits_text(limit)}."
        buttons = [button("Agent settings", OPEN_AGENT_SETTINGS, agent_value)]
    elif kind == Alert.AGENT_STOPPED:
        reason = p.get("reason") or ""
        text = f":red_circle: *{name}* stopped: {STOP_REASONS.get(reason, reason)}."
        buttons = [top_up]
        if reason in ("plan_exhausted", "monthly_limit") and agent_value:
            buttons.append(button("Use balance for this agent", AGENT_USE_BALANCE, agent_value))
        buttons.append(button("Agent settings", OPEN_AGENT_SETTINGS, agent_value))
    elif kind == Alert.AGENT_RESUMED:
        was = p.get("previous_reason") or ""
        cause = RESUME_CAUSES.get(p.get("cause") or "", p.get("cause") or "its reason cleared")
        text = f":large_green_circle: *{name}* resumed: {cause} (it had stopped because {STOP_REASONS.get(was, was)})."
    elif kind == Alert.TOPUP_RECEIVED:
        money = _payload_money(p, currency)
        credits = _payload_credits(p)
        text = ":moneybag: Top-up received"
        text += f": {money}" if money else ""
        text += f", {credits} added to the wallet." if credits else "."
        by = p.get("requested_by")
        if isinstance(by, str) and by[:1] in ("U", "W"):
            how = " with the saved card" if p.get("source") == "saved_card" else ""
            text += f" Paid{how} by <@{by}>."
        if isinstance(p.get("wallet_balance"), int):
            text += f" The wallet now holds {credits_text(p['wallet_balance'])}."
    elif kind == Alert.RECHARGE_SUCCEEDED:
        money = _payload_money(p, currency)
        credits = _payload_credits(p)
        text = ":white_check_mark: Auto-recharge succeeded"
        text += f": {money}" if money else ""
        text += f" ({credits})." if credits else "."
    elif kind == Alert.RECHARGE_FAILED:
        reason = p.get("reason") or ""
        money = _payload_money(p, currency)
        text = f":x: Auto-recharge{' of ' + money if money else ''} failed: {RECHARGE_REASONS.get(reason, reason or 'unknown reason')}"
        text += f" ({p['message']})." if p.get("message") else "."
        if p.get("fix_url"):
            buttons = [button("Fix the payment", OPEN_LINK, url=str(p["fix_url"]), style="primary")]
        else:
            buttons = [button("Auto-recharge settings", OPEN_AUTO_RECHARGE)]
        buttons.append(top_up)
    elif kind == Alert.AUTO_RECHARGE_PAUSED:
        failures = p.get("failures") if isinstance(p.get("failures"), int) else 3
        reason = RECHARGE_REASONS.get(p.get("reason") or "", p.get("reason"))
        text = (
            f":pause_button: Auto-recharge paused itself after {failures} failed attempts in a row"
        )
        text += f" (the last: {reason})." if reason else "."
        text += " Fix the card, then save the auto-recharge settings to turn it back on."
        buttons = [button("Auto-recharge settings", OPEN_AUTO_RECHARGE), top_up]
        if p.get("fix_url"):
            buttons.insert(
                0, button("Fix the payment", OPEN_LINK, url=str(p["fix_url"]), style="primary")
            )
    elif kind == Alert.REFUND_SHORTFALL:
        short = p.get("shortfall") or p.get("refund_shortfall") or 0
        text = (
            f":warning: A refunded top-up took back more than the wallet held:"
            f" {credits_text(short) if isinstance(short, int) else short} could not be taken back."
        )
    elif kind == Alert.CYCLE_RENEWED:
        nxt = p.get("next_renewal_at")
        nxt_text = (
            f" Next renewal: {day_text(datetime.fromisoformat(nxt), timezone)}." if nxt else ""
        )
        text = (
            f":arrows_counterclockwise: New cycle: {credits_text(p.get('granted', 0))} of plan credits granted"
            f" ({credits_text(p.get('expired', 0))} left from the last cycle expired).{nxt_text}"
        )
    else:
        text = f"{kind.removeprefix('alert.').replace('_', ' ').capitalize()}."
    plain = f"[{account_name}] " + _strip_marks(text)
    blocks = [section(text), context_block(f"creditbot · {account_name}")]
    if buttons:
        blocks.insert(1, actions(*buttons, block_id=f"alert:{kind.removeprefix('alert.')}"))
    return {"text": plain, "blocks": blocks}


def _strip_marks(text: str) -> str:
    text = re.sub(r":[a-z_]+: ", "", text)
    return text.replace("*", "")
