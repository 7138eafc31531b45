"""What the usage surfaces show (Slack's /usage and the usage section of /balance and the
App Home, and the billing page), read from the ledger in one transaction: the last 30
local days of usage by agent and day, plan vs wallet, each agent's month spend against its
limit, the run-out forecast, and the months a statement can be downloaded for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from bot.context import AppContext
from ledger.accounts import balance
from ledger.agents import AgentView
from ledger.cycles import local_date, utcnow
from ledger.db import transaction
from ledger.forecast import Forecast, forecast
from ledger.models import Account
from ledger.usage import UsageRow, usage_report

#: Months offered for statements: this one and the ones before.
STATEMENT_MONTHS = 12


@dataclass(frozen=True)
class UsageSummary:
    account_id: int
    account_name: str
    timezone: str
    start: date
    end: date
    #: One row per agent and day with usage (the chart).
    by_agent_day: list[UsageRow]
    #: One row per agent over the range, most used first.
    by_agent: list[UsageRow]
    total: UsageRow
    #: Agents, most spent this month first.
    agents: list[AgentView]
    forecast: Forecast
    #: 'YYYY-MM' of this month and the ones before, newest first.
    months: list[str]

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def months_before(today: date, count: int = STATEMENT_MONTHS) -> list[str]:
    index = today.year * 12 + today.month - 1
    return [f"{(index - n) // 12:04d}-{(index - n) % 12 + 1:02d}" for n in range(count)]


def read_usage_summary(
    session: Session, account_id: int, *, now: datetime | None = None, end: date | None = None
) -> UsageSummary:
    """The summary of the 30 local days ending `end` (by default today)."""
    now = now or utcnow()
    view = balance(session, account_id, now=now)  # raises for an unknown account
    account = session.get(Account, account_id)
    assert account is not None
    today = local_date(now, account.timezone)
    by_day = usage_report(session, account_id, None, end or today, ("agent", "day"), now=now)
    by_agent = usage_report(session, account_id, by_day.start, by_day.end, ("agent",), now=now)
    return UsageSummary(
        account_id=account_id,
        account_name=view.name,
        timezone=account.timezone,
        start=by_day.start,
        end=by_day.end,
        by_agent_day=by_day.rows,
        by_agent=sorted(by_agent.rows, key=lambda r: (-r.total, r.agent or "")),
        total=by_day.total,
        agents=sorted(view.agents, key=lambda a: (-a.month_spend, a.name)),
        forecast=forecast(session, account_id, now=now),
        months=months_before(today),
    )


def load_usage_summary(
    context: AppContext, account_id: int, *, now: datetime | None = None, end: date | None = None
) -> UsageSummary:
    return transaction(
        context.sessions, lambda s: read_usage_summary(s, account_id, now=now, end=end)
    )
