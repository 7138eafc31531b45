"""The dashboard: `/balance` and the App Home tab."""

from __future__ import annotations

from typing import Any

from bot.slack.blocks.base import (
    BEHAVIOURS,
    HOME_ALERT_CHANNEL,
    OPEN_AGENT_SETTINGS,
    OPEN_AUTO_RECHARGE,
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
from bot.slack.blocks.usage import forecast_words, usage_section
from bot.slack.dashboard_data import Dashboard
from ledger.accounts import AgentView
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
