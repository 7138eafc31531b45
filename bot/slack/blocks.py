"""Block Kit builders: pure functions from ledger data to the dicts Slack receives.

Every message comes with a `text` fallback (notifications, screen readers, old clients).
Nothing here talks to Slack or the database, so each builder is tested on its own.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any

from bot.slack.dashboard import Card, Dashboard
from ledger.accounts import AgentView
from ledger.cycles import zone
from ledger.units import MILLI, currency_exponent, format_credits, format_money

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


# -- small pieces -------------------------------------------------------------------------


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


def agent_line(agent: AgentView) -> str:
    if agent.status == "active":
        status = ":large_green_circle: active"
    else:
        status = (
            f":red_circle: stopped: {STOP_REASONS.get(agent.stop_reason or '', agent.stop_reason)}"
        )
    if agent.monthly_limit:
        spend = (
            f"{format_credits(agent.month_spend)} of {credits_text(agent.monthly_limit)} this month"
            f" ({percent(agent.month_spend, agent.monthly_limit)}%)"
        )
    else:
        spend = f"{credits_text(agent.month_spend)} this month, no monthly limit"
    return f"*{agent.name}*: {status}\n{spend} · {BEHAVIOURS[agent.behaviour]}"


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


# -- the dashboard (/balance and App Home) ------------------------------------------------


def forecast_text(d: Dashboard) -> str:
    f, tz = d.forecast, d.timezone
    if f.per_day <= 0:
        return f"No credits used in the last {f.days} days, so no forecast yet."
    pace = f"At the last {f.days} days' pace ({credits_text(f.per_day)} a day)"
    if f.plan_until is None:
        renewal = f" on {day_text(f.renewal_at, tz, year=False)}" if f.renewal_at else ""
        return f"{pace}, plan credits last until the renewal{renewal}."
    text = f"{pace}, plan credits last until {day_text(f.plan_until, tz, year=False)}"
    if f.wallet_until is not None:
        text += f", the wallet until {day_text(f.wallet_until, tz, year=False)}"
    else:
        text += ", and the wallet is empty"
    return text + "."


def auto_recharge_text(d: Dashboard) -> str:
    a, cur = d.auto, d.currency
    if not a.enabled:
        state = "*Auto-recharge:* off"
    elif a.paused:
        state = "*Auto-recharge:* paused after 3 failed attempts in a row (save the settings to turn it back on)"
    else:
        state = (
            f"*Auto-recharge:* on: when the wallet drops below {format_money(a.threshold_minor, cur)},"
            f" add {format_money(a.amount_minor, cur)} (at most {format_money(a.monthly_cap_minor, cur)} a month)"
        )
    card = f"Card: {d.card.label}" if d.card else "Card: no saved card"
    lines = [state, card]
    if d.last_attempt is not None:
        at = d.last_attempt
        when = day_text(at.at, d.timezone) if at.at else "recently"
        amount = f" of {format_money(at.amount_minor, cur)}" if at.amount_minor else ""
        outcome = at.status
        if at.status == "failed":
            outcome = (
                f"failed: {RECHARGE_REASONS.get(at.reason or '', at.reason or 'unknown reason')}"
            )
            if at.message:
                outcome += f" ({at.message})"
        lines.append(f"Last attempt{amount}: {when}, {outcome}")
    return "\n".join(lines)


def dashboard_summary(d: Dashboard) -> str:
    """The plain-text fallback of the dashboard."""
    b = d.balance
    renewal = day_text(b.next_renewal_at, d.timezone) if b.next_renewal_at else "none"
    return (
        f"{b.name}: wallet {credits_text(b.wallet_balance)} ({format_money(b.wallet_value_minor, b.currency)}); "
        f"plan credits {format_credits(b.plan_balance)} of {format_credits(b.plan_grant)} left; "
        f"next renewal {renewal}."
    )


def dashboard_blocks(d: Dashboard, *, max_agents: int = 20) -> list[Block]:
    b, tz = d.balance, d.timezone
    renewal = day_text(b.next_renewal_at, tz) if b.next_renewal_at else "not scheduled"
    plan = (
        f"*Plan credits*\n{format_credits(b.plan_balance)} of {format_credits(b.plan_grant)} left"
        f"\n`{bar(b.plan_balance, b.plan_grant)}` {percent(b.plan_balance, b.plan_grant)}%"
    )
    blocks: list[Block] = [
        header(f"{b.name}: balance"),
        fields(
            f"*Wallet*\n{credits_text(b.wallet_balance)} ({format_money(b.wallet_value_minor, b.currency)})",
            plan,
            f"*Next renewal*\n{renewal}",
        ),
        context_block(forecast_text(d)),
        section(auto_recharge_text(d)),
        divider(),
    ]
    if b.agents:
        blocks.append(section(f"*Agents* ({len(b.agents)})"))
        for agent in b.agents[:max_agents]:
            blocks.append(
                section(
                    agent_line(agent),
                    accessory=button("Settings", OPEN_AGENT_SETTINGS, str(agent.id)),
                )
            )
        if len(b.agents) > max_agents:
            blocks.append(context_block(f"and {len(b.agents) - max_agents} more agents"))
    else:
        blocks.append(section("*Agents*: none yet."))
    blocks.append(
        actions(
            button("Top up", OPEN_TOPUP, style="primary"),
            button("Auto-recharge settings", OPEN_AUTO_RECHARGE),
            button("Agent settings", OPEN_AGENT_SETTINGS),
            block_id="dashboard_actions",
        )
    )
    return blocks


def balance_message(d: Dashboard) -> Message:
    return {"text": dashboard_summary(d), "blocks": dashboard_blocks(d)}


def home_view(d: Dashboard, *, notice: str | None = None) -> View:
    """The App Home tab: the dashboard, the alert channel picker and a notice if any."""
    blocks = dashboard_blocks(d)
    picker: dict[str, Any] = {
        "type": "conversations_select",
        "action_id": HOME_ALERT_CHANNEL,
        "placeholder": _text("Pick a channel", "plain_text"),
        "filter": {"include": ["public", "private"], "exclude_bot_users": True},
    }
    if d.alert_channel:
        picker["initial_conversation"] = d.alert_channel
    where = f"<#{d.alert_channel}>" if d.alert_channel else "no channel yet"
    blocks += [
        divider(),
        section(
            f"*Alerts* go to {where}: low balances, stopped agents, top-ups and recharges.",
            accessory=picker,
            block_id="alert_channel",
        ),
    ]
    admins = mention_list(d.billing_admins) if d.billing_admins else "none named"
    blocks.append(context_block(f"Billing admins: workspace admins and owners, and {admins}."))
    if notice:
        blocks.insert(0, section(notice, block_id="notice"))
    return {"type": "home", "blocks": blocks[:100]}


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


# -- top-ups ------------------------------------------------------------------------------


def charge_confirm(amount: str, card: Card) -> dict[str, Any]:
    return {
        "title": _text("Charge the saved card?", "plain_text"),
        "text": _text(f"{amount} will be charged to {card.label} now and added to the wallet."),
        "confirm": _text(f"Charge {amount}", "plain_text"),
        "deny": _text("Cancel", "plain_text"),
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
    return {
        "text": f"Top up {amount}: press Pay {amount} to open the Stripe payment page.",
        "blocks": topup_offer_blocks(amount_minor, currency, credits_per_unit, card, key),
    }


def checkout_ready_blocks(amount: str, url: str) -> list[Block]:
    return [
        section(
            f"Your Stripe payment page for *{amount}* is ready. The wallet is credited as soon as"
            " Stripe confirms the payment.",
            accessory=button(f"Open payment page ({amount})", OPEN_LINK, url=url, style="primary"),
        )
    ]


def checkout_ready_message(amount: str, url: str) -> Message:
    return {
        "text": f"Your Stripe payment page for {amount} is ready: {url}",
        "blocks": checkout_ready_blocks(amount, url),
    }


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
                "label": _text("Amount", "plain_text"),
                "element": {
                    "type": "radio_buttons",
                    "action_id": "preset_input",
                    "options": [
                        {
                            "text": _text(format_money(p, currency), "plain_text"),
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
            "label": _text("Other amount" if presets else "Amount", "plain_text"),
            "hint": _text(
                f"Between {format_money(low_minor, currency)} and {format_money(high_minor, currency)}.",
                "plain_text",
            ),
            "element": {
                "type": "plain_text_input",
                "action_id": "amount_input",
                "placeholder": _text("for example 50.00", "plain_text"),
            },
        }
    )
    return {
        "type": "modal",
        "callback_id": TOPUP_MODAL,
        "private_metadata": metadata,
        "title": _text("Top up the wallet", "plain_text"),
        "submit": _text("Continue", "plain_text"),
        "close": _text("Cancel", "plain_text"),
        "blocks": blocks,
    }


def info_modal(title: str, text: str, extra: list[Block] | None = None) -> View:
    return {
        "type": "modal",
        "title": _text(title[:24], "plain_text"),
        "close": _text("Close", "plain_text"),
        "blocks": [section(text), *(extra or [])],
    }


# -- auto-recharge ------------------------------------------------------------------------


def auto_recharge_modal(d: Dashboard, *, metadata: str = "") -> View:
    a, cur = d.auto, d.currency

    def money_field(block_id: str, label: str, minor: int, hint: str) -> Block:
        element: dict[str, Any] = {"type": "plain_text_input", "action_id": f"{block_id}_input"}
        if minor:
            element["initial_value"] = money_input_text(minor, cur)
        return {
            "type": "input",
            "block_id": block_id,
            "optional": True,
            "label": _text(label, "plain_text"),
            "hint": _text(hint, "plain_text"),
            "element": element,
        }

    on = {"text": _text("On", "plain_text"), "value": "on"}
    off = {"text": _text("Off", "plain_text"), "value": "off"}
    card = (
        section(
            f"Card: *{d.card.label}*", accessory=button("Replace card", ADD_CARD), block_id="card"
        )
        if d.card
        else section(
            "No saved card: auto-recharge fails until one is added.",
            accessory=button("Add a card", ADD_CARD, style="primary"),
            block_id="card",
        )
    )
    blocks = [
        {
            "type": "input",
            "block_id": "enabled",
            "label": _text("Auto-recharge", "plain_text"),
            "element": {
                "type": "radio_buttons",
                "action_id": "enabled_input",
                "options": [on, off],
                "initial_option": on if a.enabled else off,
            },
        },
        money_field(
            "threshold",
            f"When the wallet drops below ({cur})",
            a.threshold_minor,
            "For example 10.00",
        ),
        money_field(
            "amount",
            f"Add this amount ({cur})",
            a.amount_minor,
            f"Between {format_money(d.topup_min_minor, cur)} and {format_money(d.topup_max_minor, cur)}",
        ),
        money_field(
            "monthly_cap",
            f"At most this much a month ({cur})",
            a.monthly_cap_minor,
            "The total auto-recharged in a calendar month",
        ),
        card,
    ]
    if a.paused:
        blocks.append(
            context_block("Paused after 3 failed attempts in a row: saving it on resumes it.")
        )
    return {
        "type": "modal",
        "callback_id": AUTO_RECHARGE_MODAL,
        "private_metadata": metadata,
        "title": _text("Auto-recharge", "plain_text"),
        "submit": _text("Save", "plain_text"),
        "close": _text("Cancel", "plain_text"),
        "blocks": blocks,
    }


def auto_recharge_saved_text(
    enabled: bool,
    threshold_minor: int,
    amount_minor: int,
    cap_minor: int,
    currency: str,
    card: Card | None,
) -> str:
    if not enabled:
        return ":white_check_mark: Auto-recharge is *off*. The wallet is only topped up by hand."
    text = (
        f":white_check_mark: Auto-recharge is *on*: when the wallet drops below"
        f" {format_money(threshold_minor, currency)}, {format_money(amount_minor, currency)} is"
        f" charged to {card.label if card else 'the saved card'}, at most"
        f" {format_money(cap_minor, currency)} a month."
    )
    if card is None:
        text += (
            "\n:warning: No card is saved yet: add one, or recharges fail with"
            " `missing_payment_method`."
        )
    return text


# -- agent settings -----------------------------------------------------------------------


def agent_block_ids(agent_id: int) -> tuple[str, str]:
    """The behaviour and limit block ids for one agent: they change with the agent so Slack
    shows that agent's values instead of keeping what was typed for another."""
    return f"behaviour:{agent_id}", f"limit:{agent_id}"


def agent_modal(agents: list[AgentView], selected: AgentView, *, metadata: str = "") -> View:
    def option(a: AgentView) -> dict[str, Any]:
        return {"text": _text(a.name[:75], "plain_text"), "value": str(a.id)}

    behaviour_options = [
        {"text": _text(label, "plain_text"), "value": key} for key, label in BEHAVIOURS.items()
    ]
    behaviour_id, limit_id = agent_block_ids(selected.id)
    limit_element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "limit_input",
        "placeholder": _text("No limit", "plain_text"),
    }
    if selected.monthly_limit:
        limit_element["initial_value"] = str(selected.monthly_limit // MILLI)
    state = (
        "active"
        if selected.status == "active"
        else f"stopped: {STOP_REASONS.get(selected.stop_reason or '', selected.stop_reason)}"
    )
    return {
        "type": "modal",
        "callback_id": AGENT_MODAL,
        "private_metadata": metadata,
        "title": _text("Agent settings", "plain_text"),
        "submit": _text("Save", "plain_text"),
        "close": _text("Cancel", "plain_text"),
        "blocks": [
            {
                "type": "input",
                "block_id": "agent",
                "dispatch_action": True,
                "label": _text("Agent", "plain_text"),
                "element": {
                    "type": "static_select",
                    "action_id": AGENT_SELECT,
                    "options": [option(a) for a in agents[:100]],
                    "initial_option": option(selected),
                },
            },
            context_block(
                f"*{selected.name}* is {state}; {credits_text(selected.month_spend)} used this month."
            ),
            {
                "type": "input",
                "block_id": behaviour_id,
                "label": _text("When plan credits run out", "plain_text"),
                "element": {
                    "type": "radio_buttons",
                    "action_id": "behaviour_input",
                    "options": behaviour_options,
                    "initial_option": next(
                        o for o in behaviour_options if o["value"] == selected.behaviour
                    ),
                },
            },
            {
                "type": "input",
                "block_id": limit_id,
                "optional": True,
                "label": _text("Monthly spending limit (credits)", "plain_text"),
                "hint": _text("A whole number of credits; leave blank for no limit.", "plain_text"),
                "element": limit_element,
            },
        ],
    }


def agent_saved_text(
    name: str, behaviour: str, limit: int | None, resumed: bool, was: str | None
) -> str:
    limit_text = f"monthly limit {credits_text(limit)}" if limit else "no monthly limit"
    text = f":white_check_mark: Saved *{name}*: {BEHAVIOURS[behaviour].lower()}; {limit_text}."
    if resumed:
        text += f"\n:arrow_forward: {name} had stopped ({STOP_REASONS.get(was or '', was)}) and has resumed."
    return text


def no_agents_text() -> str:
    return "This account has no agents yet. Add one with `creditbot agents add`."


# -- alerts -------------------------------------------------------------------------------


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
    if kind == "alert.plan_low":
        grant = p.get("plan_grant") or 0
        text = (
            f":warning: Plan credits are running low: {format_credits(p.get('plan_balance', 0))}"
            f" of {credits_text(grant)} left ({percent(p.get('plan_balance', 0), grant)}%).{renewal}"
        )
        buttons = [top_up]
    elif kind == "alert.plan_exhausted":
        text = (
            ":no_entry: Plan credits are used up. Agents set to Stop pause until the renewal;"
            f" agents set to Use balance draw on the wallet.{renewal}"
        )
        buttons = [top_up, button("Agent settings", OPEN_AGENT_SETTINGS)]
    elif kind == "alert.wallet_low":
        text = (
            f":warning: The wallet is low: {credits_text(p.get('wallet_balance', 0))} left"
            f" (alert below {credits_text(p.get('threshold', 0))})."
        )
        buttons = [top_up, button("Auto-recharge settings", OPEN_AUTO_RECHARGE)]
    elif kind in ("alert.limit_80", "alert.limit_100"):
        spend, limit = p.get("month_spend", 0), p.get("limit", 0)
        if kind == "alert.limit_80":
            text = f":warning: *{name}* has used {percent(spend, limit)}% of its monthly limit: {format_credits(spend)} of {credits_text(limit)}."
        else:
            text = f":octagonal_sign: *{name}* reached its monthly limit: {format_credits(spend)} of {credits_text(limit)}."
        buttons = [button("Agent settings", OPEN_AGENT_SETTINGS, agent_value)]
    elif kind == "alert.agent_stopped":
        reason = p.get("reason") or ""
        text = f":red_circle: *{name}* stopped: {STOP_REASONS.get(reason, reason)}."
        buttons = [top_up]
        if reason in ("plan_exhausted", "monthly_limit") and agent_value:
            buttons.append(button("Use balance for this agent", AGENT_USE_BALANCE, agent_value))
        buttons.append(button("Agent settings", OPEN_AGENT_SETTINGS, agent_value))
    elif kind == "alert.agent_resumed":
        was = p.get("previous_reason") or ""
        cause = RESUME_CAUSES.get(p.get("cause") or "", p.get("cause") or "its reason cleared")
        text = f":large_green_circle: *{name}* resumed: {cause} (it had stopped because {STOP_REASONS.get(was, was)})."
    elif kind == "alert.topup_received":
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
    elif kind == "alert.recharge_succeeded":
        money = _payload_money(p, currency)
        credits = _payload_credits(p)
        text = ":white_check_mark: Auto-recharge succeeded"
        text += f": {money}" if money else ""
        text += f" ({credits})." if credits else "."
    elif kind == "alert.recharge_failed":
        reason = p.get("reason") or ""
        money = _payload_money(p, currency)
        text = f":x: Auto-recharge{' of ' + money if money else ''} failed: {RECHARGE_REASONS.get(reason, reason or 'unknown reason')}"
        text += f" ({p['message']})." if p.get("message") else "."
        if p.get("fix_url"):
            buttons = [button("Fix the payment", OPEN_LINK, url=str(p["fix_url"]), style="primary")]
        else:
            buttons = [button("Auto-recharge settings", OPEN_AUTO_RECHARGE)]
        buttons.append(top_up)
    elif kind == "alert.auto_recharge_paused":
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
    elif kind == "alert.refund_shortfall":
        short = p.get("shortfall") or p.get("refund_shortfall") or 0
        text = (
            f":warning: A refunded top-up took back more than the wallet held:"
            f" {credits_text(short) if isinstance(short, int) else short} could not be taken back."
        )
    elif kind == "alert.cycle_renewed":
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
