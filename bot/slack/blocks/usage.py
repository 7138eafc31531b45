"""Usage in Slack: `/usage`, and the usage section of `/balance` and the App Home -- the
last 30 days as a chart image (with its words for screen readers and notifications), the
agents' month spend against their limits, the run-out forecast, a statement download per
month and the billing page. Texts are plain strings: blocks.base escapes them where they
become mrkdwn, so an agent's name cannot carry markup."""

from __future__ import annotations

from bot.charts import chart_alt_text
from bot.slack.blocks.base import (
    OPEN_LINK,
    Block,
    Message,
    actions,
    button,
    context_block,
    credits_text,
    day_text,
    header,
    message,
    percent,
    plain,
    section,
)
from bot.usage_summary import UsageSummary
from ledger.agents import AgentView
from ledger.forecast import Forecast
from ledger.units import format_credits

OPEN_BILLING_PAGE = "open_billing_page"
STATEMENT_MONTH = "statement_month"
#: Agents listed with their month spend.
TOP_AGENTS = 5


def forecast_words(f: Forecast, tz: str) -> str:
    """The run-out forecast in a sentence (no markup: the billing page shows it too)."""
    if f.per_day <= 0:
        return f"No credits used in the last {f.days} days, so no forecast yet."
    pace = f"At the last {f.days} days' pace ({credits_text(f.per_day)} a day)"
    if f.plan_beyond:
        return f"{pace}, plan credits last more than a year."
    if f.plan_until is None:
        renewal = f" on {day_text(f.renewal_at, tz, year=False)}" if f.renewal_at else ""
        return f"{pace}, plan credits last until the renewal{renewal}."
    text = f"{pace}, plan credits last until {day_text(f.plan_until, tz, year=False)}"
    if f.wallet_beyond:
        text += ", the wallet more than a year"
    elif f.wallet_until is not None:
        text += f", the wallet until {day_text(f.wallet_until, tz, year=_later_year(f))}"
    else:
        text += ", and the wallet is empty"
    return text + "."


def _later_year(f: Forecast) -> bool:
    """Name the year once the date is in another one."""
    return (
        f.wallet_until is not None
        and f.plan_until is not None
        and (f.wallet_until.year != f.plan_until.year)
    )


def chart_block(summary: UsageSummary, url: str) -> Block:
    return {
        "type": "image",
        "image_url": url,
        "alt_text": chart_alt_text(summary)[:2000],
        "title": plain(f"Credits used per day, last {summary.days} days"),
    }


def totals_text(summary: UsageSummary) -> str:
    t = summary.total
    return (
        f"*Last {summary.days} days:* {credits_text(t.total)} "
        f"({format_credits(t.from_plan)} from plan credits, {format_credits(t.from_wallet)} "
        f"from the wallet), {t.messages:,} messages and {t.call_minutes:,} call minutes."
    )


def month_spend_line(agent: AgentView) -> str:
    name = agent.name  # plain text: escaped where it becomes mrkdwn (blocks.base)
    if agent.monthly_limit:
        return (
            f"*{name}*: {format_credits(agent.month_spend)} of "
            f"{credits_text(agent.monthly_limit)} this month "
            f"({percent(agent.month_spend, agent.monthly_limit)}% of its limit)"
        )
    return f"*{name}*: {credits_text(agent.month_spend)} this month, no limit"


def top_agents_text(summary: UsageSummary) -> str:
    if not summary.agents:
        return "*Top agents*: none yet."
    lines = [month_spend_line(a) for a in summary.agents[:TOP_AGENTS]]
    more = len(summary.agents) - TOP_AGENTS
    if more > 0:
        lines.append(f"and {more} more")
    return "*Top agents this month*\n" + "\n".join(lines)


def statement_select(months: list[str]) -> dict:
    return {
        "type": "static_select",
        "action_id": STATEMENT_MONTH,
        "placeholder": plain("Download statement"),
        "options": [{"text": plain(f"Statement {m} (CSV)"), "value": m} for m in months[:100]],
    }


def usage_actions(months: list[str]) -> Block:
    return actions(
        statement_select(months),
        button("Open billing page", OPEN_BILLING_PAGE),
        block_id="usage_actions",
    )


def usage_section(summary: UsageSummary, chart_url: str | None) -> list[Block]:
    """The chart (when Slack can fetch it), the totals and the statement and billing
    page actions: what /balance and the Home tab show of usage."""
    found: list[Block] = []
    if chart_url:
        found.append(chart_block(summary, chart_url))
    found += [section(totals_text(summary)), usage_actions(summary.months)]
    return found


def usage_summary_text(summary: UsageSummary) -> str:
    """The plain-text fallback of /usage."""
    by_agent = "; ".join(
        f"{r.agent}: {format_credits(r.total)}" for r in summary.by_agent[:TOP_AGENTS]
    )
    t = summary.total
    return (
        f"{summary.account_name}: {format_credits(t.total)} credits used in the last "
        f"{summary.days} days ({format_credits(t.from_plan)} plan, "
        f"{format_credits(t.from_wallet)} wallet)."
        + (f" By agent: {by_agent}." if by_agent else "")
    )


def usage_message(summary: UsageSummary, chart_url: str | None) -> Message:
    """/usage: the chart, the totals, the top agents, the forecast, the actions."""
    blocks: list[Block] = [header(f"{summary.account_name}: usage")]
    if chart_url:
        blocks.append(chart_block(summary, chart_url))
    blocks += [
        section(totals_text(summary)),
        section(top_agents_text(summary)),
        context_block(forecast_words(summary.forecast, summary.timezone)),
        usage_actions(summary.months),
    ]
    return message(usage_summary_text(summary), blocks)


def statement_link_message(month: str, url: str) -> Message:
    text = f"Your statement of {month} is ready: the link works for an hour."
    return message(
        text, [section(text, accessory=button(f"Download {month} (CSV)", OPEN_LINK, url=url))]
    )


def billing_link_message(url: str, can_edit: bool, minutes: int) -> Message:
    what = (
        "You can top up and change settings there."
        if can_edit
        else "You can see everything there; billing admins can also change settings."
    )
    text = (
        f"Here is your link to the billing page. It is yours alone and works once, "
        f"for {minutes} minutes. {what}"
    )
    return {
        "text": text,
        "blocks": [
            section(
                text, accessory=button("Open billing page", OPEN_LINK, url=url, style="primary")
            ),
        ],
    }
