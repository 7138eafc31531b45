"""Usage by agent, day and unit, plan vs wallet: read from the usage rollup.

The rollup (`usage_days`, ledger/models/usage.py) holds one row per agent, local day
(account time zone) and unit, written by the journal's gate with every charge and refund
(ledger/journal/_rollup.py). Every question here reads it, never the journal, so a query
over any range costs a few rows per day whatever the journal's size. Whether it agrees
with the journal is ledger/usage_check.py's to say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Date,
    bindparam,
    case,
    cast,
    func,
    null,
    select,
)
from sqlalchemy.orm import Session

from ledger.cycles import local_date, utcnow
from ledger.errors import InvalidInput, UnknownAccount
from ledger.journal import DriverStatement
from ledger.models import Account, Agent, UsageDay

#: What a usage report can be grouped by.
GROUPS = ("agent", "day", "unit")
#: Longest range one query may ask for (ten years of days): larger is a typo.
MAX_DAYS = 3660
#: The range a report covers when none is asked for: the last 30 days, today included.
DEFAULT_DAYS = 30


class UsageRow(NamedTuple):
    """Usage of one group (the fields not grouped by are None), in milli-credits.

    A NamedTuple, not a dataclass: a 90-day report of a busy account is thousands of them."""

    agent_id: int | None
    agent: str | None
    day: date | None
    unit: str | None
    messages: int
    call_minutes: int
    from_plan: int
    from_wallet: int

    @property
    def total(self) -> int:
        return self.from_plan + self.from_wallet


def check_range(start: date, end: date) -> None:
    """A range of local days, first and last included."""
    if start > end:
        raise InvalidInput(f"The range starts ({start}) after it ends ({end}).")
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidInput(f"Ask for at most {MAX_DAYS} days at a time.")


def check_groups(group_by: Sequence[str]) -> tuple[str, ...]:
    """The groups in their canonical order (agent, day, unit), each known and once."""
    unknown = [g for g in group_by if g not in GROUPS]
    if unknown:
        raise InvalidInput(f"Cannot group by {unknown[0]!r}: use agent, day and/or unit.")
    return tuple(g for g in GROUPS if g in group_by)


def usage(
    session: Session,
    account_id: int,
    start: date,
    end: date,
    group_by: Sequence[str] = GROUPS,
) -> list[UsageRow]:
    """The account's usage from `start` to `end` (local days, both included), one row per
    group, in group order; groups with no usage are left out."""
    check_range(start, end)
    groups = check_groups(group_by)
    names = agent_names(session, account_id) if "agent" in groups else {}
    conn = session.connection()
    cursor = _report_statement(groups).execute(
        conn, {"account_id": account_id, "start": start, "end": end}
    )
    found = cursor.fetchall()
    cursor.close()
    # Every rollup row counts at least one unit, so no group comes back empty. SQLite
    # answers days as text; PostgreSQL as dates.
    day_of = date.fromisoformat if "day" in groups and conn.dialect.name == "sqlite" else None
    rows = [
        UsageRow(agent, names.get(agent), day_of(day) if day_of else day, unit, m, c, plan, wallet)
        for agent, day, unit, m, c, plan, wallet in found
    ]
    rows.sort(key=_GROUP_ORDER)  # agent, day, unit (None throughout a column not grouped by)
    return rows


_GROUP_ORDER = itemgetter(0, 2, 3)


@cache
def _report_statement(groups: tuple[str, ...]) -> DriverStatement:
    """The report's SQL for a grouping, built once and run on the driver (a report can be
    thousands of rows: SQLAlchemy's rows would cost more than the query). Every row is
    (agent, day, unit, messages, call minutes, plan, wallet), NULL where not grouped by. It
    groups in the key's order (day before agent before unit), so the index serves it
    without a sort; the rows are put in group order afterwards."""
    u = UsageDay
    columns = {"agent": u.agent_id, "day": u.day, "unit": u.unit}
    keys = [columns[g] for g in ("day", "agent", "unit") if g in groups]
    return DriverStatement(
        select(
            *(columns[g] if g in groups else null() for g in GROUPS),
            _sum(case((u.unit == "message", u.quantity), else_=0)),
            _sum(case((u.unit == "call_minute", u.quantity), else_=0)),
            _sum(u.from_plan),
            _sum(u.from_wallet),
        )
        .where(
            u.account_id == bindparam("account_id"),
            u.day >= bindparam("start", type_=Date),
            u.day <= bindparam("end", type_=Date),
        )
        .group_by(*keys)
    )


def _sum(column: Any) -> Any:
    """A sum as a 64-bit integer on both databases (PostgreSQL sums bigints as numeric)."""
    return cast(func.coalesce(func.sum(column), 0), BigInteger)


@dataclass(frozen=True)
class UsageReport:
    """Usage of an account over a range of its local days, grouped, with the totals."""

    account_id: int
    timezone: str
    start: date
    end: date
    group_by: tuple[str, ...]
    rows: list[UsageRow]
    total: UsageRow


def usage_report(
    session: Session,
    account_id: int,
    start: date | None = None,
    end: date | None = None,
    group_by: Sequence[str] = GROUPS,
    *,
    now: datetime | None = None,
) -> UsageReport:
    """`usage` for the API, the CLI and the billing page: the range defaults to the last
    30 local days (today included), or 30 days to `end` or from `start`."""
    account = session.get(Account, account_id)
    if account is None:
        raise UnknownAccount(f"No account {account_id}.")
    span = timedelta(days=DEFAULT_DAYS - 1)
    try:
        if end is None:
            today = local_date(now or utcnow(), account.timezone)
            end = today if start is None else max(start, min(today, start + span))
        if start is None:
            start = end - span
    except OverflowError:  # a range at the edge of the calendar (year 1 or 9999)
        raise InvalidInput("Ask for days between the years 1 and 9999.") from None
    groups = check_groups(group_by)
    rows = usage(session, account_id, start, end, groups)
    return UsageReport(account_id, account.timezone, start, end, groups, rows, _total(rows))


def _total(rows: Sequence[UsageRow]) -> UsageRow:
    return UsageRow(
        None,
        None,
        None,
        None,
        sum(r.messages for r in rows),
        sum(r.call_minutes for r in rows),
        sum(r.from_plan for r in rows),
        sum(r.from_wallet for r in rows),
    )


def used(session: Session, account_id: int, start: date, end: date) -> int:
    """Milli-credits used (net of refunds, both sources) from `start` to `end` included."""
    return int(
        session.execute(
            select(func.coalesce(func.sum(UsageDay.from_plan + UsageDay.from_wallet), 0)).where(
                UsageDay.account_id == account_id, UsageDay.day >= start, UsageDay.day <= end
            )
        ).scalar_one()
    )


def agent_names(session: Session, account_id: int) -> dict[int, str]:
    return dict(
        session.execute(select(Agent.id, Agent.name).where(Agent.account_id == account_id)).all()
    )
