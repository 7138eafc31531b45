"""Calendar months and days in the account's time zone: `month_key` and `day_and_month`
remember a zone's current month or day as a span of instants; whatever the order they are
asked in, they answer what converting the instant to local time says, at and around every
local midnight that starts a month or a day (in zones whose clocks change at midnight too)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from ledger.cycles import day_and_month, local_date, month_key

ZONES = ["UTC", "Europe/Madrid", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns",
         "Pacific/Chatham", "Australia/Lord_Howe", "Europe/Amsterdam", "America/New_York",
         "America/Santiago", "America/Havana", "Asia/Beirut"]  # fmt: skip

instants = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def expected(now: datetime, tz: str) -> str:
    day = local_date(now, tz)
    return f"{day.year:04d}-{day.month:02d}"


@given(st.lists(st.tuples(instants, st.sampled_from(ZONES), st.integers(-2, 2), st.booleans())))
def test_month_key_is_the_local_month_whatever_was_asked_before(asks):
    for now, tz, seconds, at_month_start in asks:
        if at_month_start:  # a moment around the local midnight that starts this month
            day = local_date(now, tz)
            start = datetime(day.year, day.month, 1, tzinfo=ZoneInfo(tz)).astimezone(UTC)
            now = start + timedelta(seconds=seconds)
        assert month_key(now, tz) == expected(now, tz)


@given(st.lists(st.tuples(instants, st.sampled_from(ZONES), st.integers(-2, 2), st.booleans())))
def test_day_and_month_are_the_local_day_whatever_was_asked_before(asks):
    for now, tz, seconds, at_day_start in asks:
        if at_day_start:  # a moment around the local midnight that starts this day
            day = local_date(now, tz)
            start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)
            now = start + timedelta(seconds=seconds)
        assert day_and_month(now, tz) == (local_date(now, tz), expected(now, tz))
