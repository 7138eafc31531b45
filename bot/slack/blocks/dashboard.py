"""The dashboard: `/balance` and the App Home tab."""

from __future__ import annotations

from typing import Any

from bot.slack.blocks.base import (
    BEHAVIOURS,
    HOME_ALERT_CHANNEL,
    MANAGE_CARD,
    OPEN_AGENT_SETTINGS,
    OPEN_AUTO_RECHARGE,
    OPEN_SPEND_CONTROLS,
    OPEN_TOPUP,
    RECHARGE_REASONS,
    STOP_REASONS,
    VIEW_BLOCKS,
    Block,
    Message,
    View,
    actions,
    bar,
    button,
    context_block,
    credits_text,
    day_text,
    divider,
    fields,
    header,
    mention_list,
    message,
    percent,
    plain,
    section,
)
from bot.slack.blocks.mrkdwn import Mrkdwn, channel_link, md, mention
from bot.slack.blocks.until_top_up import until_top_up_blocks, waiting_of_views
from bot.slack.blocks.usage import forecast_words, usage_section
from bot.slack.dashboard_data import Dashboard
from ledger.accounts import AgentView
from ledger.audit import AuditView
from ledger.units import format_credits, format_money


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


def forecast_text(d: Dashboard) -> str:
    return forecast_words(d.forecast, d.timezone)


def auto_recharge_text(d: Dashboard) -> str:
    a, cur = d.auto, d.currency
    if not a.enabled:
        state = "*Auto-recharge:* off"
    elif a.paused:
        state = "*Auto-recharge:* paused after 3 failed attempts in a row (save the settings to turn it back on)"
    else:
        what = (
            f"top it back up to {format_money(a.target_minor, cur)}"
            if a.mode == "target"
            else f"add {format_money(a.amount_minor, cur)}"
        )
        state = (
            f"*Auto-recharge:* on: when the wallet drops below {format_money(a.threshold_minor, cur)},"
            f" {what} (at most {format_money(a.monthly_cap_minor, cur)} a month)"
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


def budget_text(d: Dashboard) -> str:
    """The budget all agents share this month, as the dashboard's field shows it."""
    b = d.balance
    if b.monthly_budget is None:
        return f"*Monthly budget*\nnone ({credits_text(b.month_spend)} spent this month)"
    left = max(0, b.monthly_budget - b.month_spend)
    text = (
        f"*Monthly budget*\n{format_credits(b.month_spend)} of {credits_text(b.monthly_budget)}"
        f" used\n`{bar(b.month_spend, b.monthly_budget)}` {percent(b.month_spend, b.monthly_budget)}%"
    )
    if left == 0:
        text += "\n:octagonal_sign: reached: every agent is stopped"
    return text


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
            budget_text(d),
        ),
        context_block(forecast_text(d)),
    ]
    if d.usage is not None:
        blocks += usage_section(d.usage, d.chart_url)
    blocks += [section(auto_recharge_text(d)), divider()]
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
    blocks += until_top_up_blocks(waiting_of_views(b.agents))
    blocks.append(
        actions(
            button("Top up", OPEN_TOPUP, style="primary"),
            button("Auto-recharge settings", OPEN_AUTO_RECHARGE),
            button("Agent settings", OPEN_AGENT_SETTINGS),
            button("Budget and alerts", OPEN_SPEND_CONTROLS),
            button("Manage card", MANAGE_CARD),
            block_id="dashboard_actions",
        )
    )
    return blocks


#: Audited settings counted in milli-credits (others ending in `_minor` are money).
_CREDIT_SETTINGS = {"monthly_budget", "monthly_limit", "plan_credits_per_cycle",
                    "call_minute_rate", "message_rate", "amount"}  # fmt: skip


def _setting_text(key: str, value: object, currency: str) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int) and key.endswith("_minor"):
        return format_money(value, currency)
    if isinstance(value, int) and key in _CREDIT_SETTINGS:
        return credits_text(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def change_line(change: AuditView, d: Dashboard) -> Mrkdwn:
    """One settings change as the Home tab lists it: when, what, from what to what, who."""
    what = change.action.replace("_", " ").replace(".", " ")
    subject = f" {change.subject}" if change.subject else ""
    values = "; ".join(
        f"{key.replace('_', ' ')} {_setting_text(key, change.before.get(key), d.currency)}"
        f" → {_setting_text(key, value, d.currency)}"
        for key, value in change.after.items()
    )
    who = mention(change.actor) if change.actor_kind == "slack_user" else md("{}", change.actor)
    return md(
        "{} · *{}*{}: {} (by {}, {})",
        day_text(change.at, d.timezone), what, subject, values or "done", who, change.source,
    )  # fmt: skip


def balance_message(d: Dashboard) -> Message:
    return message(dashboard_summary(d), dashboard_blocks(d))


def home_view(d: Dashboard, *, notice: str | None = None) -> View:
    """The App Home tab: the dashboard, the alert channel picker and a notice if any."""
    blocks = dashboard_blocks(d)
    picker: dict[str, Any] = {
        "type": "conversations_select",
        "action_id": HOME_ALERT_CHANNEL,
        "placeholder": plain("Pick a channel", 150),
        "filter": {"include": ["public", "private"], "exclude_bot_users": True},
    }
    if d.alert_channel:
        picker["initial_conversation"] = d.alert_channel
    where = channel_link(d.alert_channel) if d.alert_channel else "no channel yet"
    blocks += [
        divider(),
        section(
            md("*Alerts* go to {}: low balances, stopped agents, top-ups and recharges.", where),
            accessory=picker,
            block_id="alert_channel",
        ),
    ]
    admins = mention_list(d.billing_admins) if d.billing_admins else "none named"
    blocks.append(context_block(md("Billing admins: workspace admins and owners, and {}.", admins)))
    if d.changes:
        blocks.append(section("*Latest settings changes*", block_id="latest_changes"))
        blocks.append(context_block(*(change_line(c, d) for c in d.changes)))
    if notice:
        blocks.insert(0, section(notice, block_id="notice"))
    return {"type": "home", "blocks": blocks[:VIEW_BLOCKS]}


def alert_channel_notice(channel: str, error: str | None = None) -> Mrkdwn:
    """What the Home tab says after an alert channel was picked."""
    if error is None:
        return md(":white_check_mark: Alerts now go to {}.", channel_link(channel))
    return md(
        ":warning: Alerts now go to {}, but I cannot post there ({})."
        " Invite me with `/invite @creditbot` in that channel.",
        channel_link(channel),
        error,
    )


def alert_channel_hello(account_name: str, user_id: str) -> Message:
    """The bot's first post in a newly picked alert channel."""
    text = md(
        "creditbot will post {}'s balance alerts in this channel (set by {}).",
        account_name,
        mention(user_id),
    )
    return message(text, [section(text)])
