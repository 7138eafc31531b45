"""Billing cycles and calendar months, in the account's time zone.

A cycle is anchored on the subscription's start day; day 29-31 falls back to the last day
of shorter months. Renewal happens at local midnight of the cycle's first day.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.errors import InvalidInput


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`, or a clear error."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"{name!r} is not a time zone (try Europe/Madrid or UTC)") from exc


def cycle_date(year: int, month: int, anchor_day: int) -> date:
    """The cycle's first day in (year, month): the anchor day, or the month's last day."""
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(anchor_day, last))


def _shift_month(year: int, month: int, by: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + by
    return index // 12, index % 12 + 1


def cycle_start_on(anchor_day: int, local_day: date) -> date:
    """The start of the cycle that contains `local_day`."""
    this_month = cycle_date(local_day.year, local_day.month, anchor_day)
    if this_month <= local_day:
        return this_month
    year, month = _shift_month(local_day.year, local_day.month, -1)
    return cycle_date(year, month, anchor_day)


def next_cycle_start(anchor_day: int, cycle_start: date) -> date:
    """The first day of the cycle after the one starting on `cycle_start`."""
    year, month = _shift_month(cycle_start.year, cycle_start.month, 1)
    return cycle_date(year, month, anchor_day)


def local_midnight(day: date, tz_name: str) -> datetime:
    """Midnight at the start of `day` in `tz_name`, as an aware UTC datetime."""
    local = datetime.combine(day, time(0), tzinfo=zone(tz_name))
    return local.astimezone(UTC)


def local_date(now: datetime, tz_name: str) -> date:
    """The calendar day `now` falls on in `tz_name`."""
    return now.astimezone(zone(tz_name)).date()


def month_key(now: datetime, tz_name: str) -> str:
    """The calendar month ('2026-11') `now` falls in, in `tz_name`."""
    # Every charge asks this: remember each zone's current month as the span of UTC
    # instants it covers, and convert time zones only when `now` leaves it.
    stamp = now.timestamp()
    span = _month_spans.get(tz_name)
    if span is not None and span[0] <= stamp < span[1]:
        return span[2]
    day = local_date(now, tz_name)
    start = local_midnight(date(day.year, day.month, 1), tz_name).timestamp()
    year, month = _shift_month(day.year, day.month, 1)
    end = local_midnight(date(year, month, 1), tz_name).timestamp()
    key = month_of(day)
    if start <= stamp < end:
        _month_spans[tz_name] = (start, end, key)
    return key


#: Time zone -> (start, end, key) of the month last asked for, in POSIX seconds.
_month_spans: dict[str, tuple[float, float, str]] = {}


def day_and_month(now: datetime, tz_name: str) -> tuple[date, str]:
    """`local_date(now, tz_name)` and its month ('2026-11'), as every charge asks them."""
    # Remember each zone's current local day as the span of UTC instants it covers (as
    # `month_key` does its month): a time zone conversion per charge cost more than the rest
    # of deciding it.
    stamp = now.timestamp()
    span = _day_spans.get(tz_name)
    if span is not None and span[0] <= stamp < span[1]:
        return span[2]
    day = local_date(now, tz_name)
    start = local_midnight(day, tz_name).timestamp()
    end = local_midnight(day + timedelta(days=1), tz_name).timestamp()
    found = (day, month_of(day))
    if start <= stamp < end:
        _day_spans[tz_name] = (start, end, found)
    return found


#: Time zone -> (start, end, (day, month)) of the local day last asked for, in POSIX seconds.
_day_spans: dict[str, tuple[float, float, tuple[date, str]]] = {}


def month_of(day: date) -> str:
    """The calendar month ('2026-11') of a day."""
    return f"{day.year:04d}-{day.month:02d}"


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (one place for tests to control time)."""
    return datetime.now(UTC)
