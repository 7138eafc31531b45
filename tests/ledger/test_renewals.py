"""Renewal dates as the scheduler drives them: on time, catch-up after downtime, day-31
anchors through February and a leap year, and daylight-saving changes (renewal once, at
local midnight). Calls the ledger with a given `now`; no timers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from ledger.db import transaction
from ledger.models import Account, Entry, OutboxMessage
from ledger.renewals import accounts_due, renew_due
from ledger.units import credits
from ledger.verify import verify
from tests.support.factories import story


def _tick(sessions, now):
    """What the renewals job does at `now`: every due account, each in its own transaction."""
    renewed = []
    for account_id in transaction(sessions, lambda s: accounts_due(s, now=now)):
        renewed += transaction(sessions, lambda s, a=account_id: renew_due(s, a, now=now))
    return renewed


def _account(sessions, account_id):
    return transaction(sessions, lambda s: s.get(Account, account_id))


def _renewal_memos(sessions, account_id):
    return transaction(
        sessions,
        lambda s: list(
            s.execute(
                select(Entry.memo)
                .where(Entry.account_id == account_id, Entry.kind == "renewal")
                .order_by(Entry.id)
            ).scalars()
        ),
    )


def _local(day: date, tz: str) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def test_renewal_happens_at_the_cycle_boundary_and_not_before(sessions):
    ids = story(sessions, plan=1000, now=datetime(2026, 11, 10, 12, tzinfo=UTC), cycle_day=1)
    boundary = datetime(2026, 12, 1, tzinfo=UTC)
    assert _tick(sessions, boundary - timedelta(seconds=1)) == []
    done = _tick(sessions, boundary)
    assert [r.cycle_start for r in done] == [date(2026, 12, 1)]
    account = _account(sessions, ids["account"])
    assert account.cycle_start == date(2026, 12, 1)
    assert account.next_renewal_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert account.plan_balance == credits(1000)


def test_catch_up_after_downtime_renews_each_missed_cycle_once_in_order(sessions):
    ids = story(sessions, plan=1000, now=datetime(2026, 11, 10, 12, tzinfo=UTC), cycle_day=15)
    # Spend some plan credits so the first catch-up expiry differs from the others.
    from ledger.charges import charge

    transaction(
        sessions,
        lambda s: charge(s, ids["account"], ids["a"], "message", 300, idempotency_key="k1"),
    )
    # Down from before the 15 November renewal until 20 February.
    done = _tick(sessions, datetime(2027, 2, 20, 9, tzinfo=UTC))
    assert [r.cycle_start for r in done] == [
        date(2026, 11, 15),
        date(2026, 12, 15),
        date(2027, 1, 15),
        date(2027, 2, 15),
    ]
    assert [r.expired for r in done] == [credits(700), credits(1000), credits(1000), credits(1000)]
    assert [r.next_renewal_at for r in done] == [
        datetime(2026, 12, 15, tzinfo=UTC),
        datetime(2027, 1, 15, tzinfo=UTC),
        datetime(2027, 2, 15, tzinfo=UTC),
        datetime(2027, 3, 15, tzinfo=UTC),
    ]
    assert _renewal_memos(sessions, ids["account"])[1:] == [
        "cycle starting 2026-11-15",
        "cycle starting 2026-12-15",
        "cycle starting 2027-01-15",
        "cycle starting 2027-02-15",
    ]
    alerts = transaction(
        sessions,
        lambda s: list(
            s.execute(
                select(OutboxMessage.payload)
                .where(OutboxMessage.kind == "alert.cycle_renewed")
                .order_by(OutboxMessage.id)
            ).scalars()
        ),
    )
    assert [a["cycle_start"] for a in alerts] == [
        "2026-11-15",
        "2026-12-15",
        "2027-01-15",
        "2027-02-15",
    ]
    account = _account(sessions, ids["account"])
    assert account.plan_balance == credits(1000)  # no rollover across the missed cycles
    assert transaction(sessions, lambda s: verify(s, ids["account"])) == []
    # Caught up: nothing more until the next boundary.
    assert _tick(sessions, datetime(2027, 3, 14, 23, 59, tzinfo=UTC)) == []


def test_a_second_run_at_the_same_time_renews_nothing(sessions):
    ids = story(sessions, now=datetime(2026, 11, 10, tzinfo=UTC), cycle_day=1)
    now = datetime(2026, 12, 1, 0, 0, 30, tzinfo=UTC)
    assert len(_tick(sessions, now)) == 1
    assert _tick(sessions, now) == []
    assert transaction(sessions, lambda s: renew_due(s, ids["account"], now=now)) == []
    assert len(_renewal_memos(sessions, ids["account"])) == 2  # creation + December


def _walk(sessions, account_id, until, step=timedelta(hours=6), start=None):
    """Run the job every `step` until `until`; return (run time, cycle start) per renewal."""
    now = start or _account(sessions, account_id).next_renewal_at - step
    seen = []
    while now <= until:
        seen += [(now, r.cycle_start) for r in _tick(sessions, now)]
        now += step
    return seen


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        (
            date(2027, 1, 31),
            [date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30), date(2027, 5, 31)],
        ),
        (
            date(2027, 12, 31),
            [date(2028, 1, 31), date(2028, 2, 29), date(2028, 3, 31), date(2028, 4, 30)],
        ),
    ],
    ids=["2027", "leap-2028"],
)
def test_day_31_anchor_renews_on_the_last_day_of_shorter_months(sessions, created, expected):
    ids = story(sessions, now=datetime.combine(created, datetime.min.time(), UTC), cycle_day=31)
    seen = _walk(sessions, ids["account"], _local(expected[-1], "UTC"))
    assert [start for _, start in seen] == expected
    # Each at the first run on or after that day's midnight.
    for ran, start in seen:
        assert _local(start, "UTC") <= ran < _local(start, "UTC") + timedelta(hours=6)


def test_anchor_29_and_30_fall_back_to_29_february_in_2028(sessions):
    a = story(sessions, now=datetime(2028, 1, 30, tzinfo=UTC), cycle_day=30, team="T30")
    b = story(sessions, now=datetime(2028, 1, 29, tzinfo=UTC), cycle_day=29, team="T29")
    _tick(sessions, datetime(2028, 3, 1, tzinfo=UTC))
    assert _account(sessions, a["account"]).cycle_start == date(2028, 2, 29)
    assert _account(sessions, b["account"]).cycle_start == date(2028, 2, 29)
    assert _account(sessions, a["account"]).next_renewal_at == datetime(2028, 3, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "anchor", "created", "change_day"),
    [
        ("Europe/Madrid", 29, date(2026, 3, 1), date(2026, 3, 29)),  # spring forward
        ("Europe/Madrid", 25, date(2026, 10, 1), date(2026, 10, 25)),  # fall back
        ("America/New_York", 8, date(2026, 3, 1), date(2026, 3, 8)),  # spring forward
        ("America/New_York", 1, date(2026, 10, 5), date(2026, 11, 1)),  # fall back
        ("America/Santiago", 6, date(2026, 8, 10), date(2026, 9, 6)),  # midnight skipped
    ],
)
def test_renewal_across_daylight_saving_happens_once_at_local_midnight(
    sessions, tz, anchor, created, change_day
):
    ids = story(
        sessions,
        now=_local(created, tz) + timedelta(hours=12),
        timezone=tz,
        cycle_day=anchor,
    )
    midnight = _local(change_day, tz)
    assert _account(sessions, ids["account"]).next_renewal_at == midnight
    # The job every 15 minutes through the night of the change and the day after.
    step = timedelta(minutes=15)
    seen = _walk(
        sessions, ids["account"], midnight + timedelta(hours=30), step, midnight - 8 * step
    )
    assert [start for _, start in seen] == [change_day]
    assert seen[0][0] == midnight  # the first run at or after local midnight
    assert midnight.astimezone(ZoneInfo(tz)).date() == change_day
    assert midnight.astimezone(ZoneInfo(tz)).hour in (0, 1)  # 01:00 where 00:00 is skipped
    # The next one is at local midnight again, whatever the offset is by then.
    account = _account(sessions, ids["account"])
    following = account.next_renewal_at.astimezone(ZoneInfo(tz))
    assert (following.day, following.hour, following.minute) == (anchor, 0, 0)
    assert following.utcoffset() != midnight.astimezone(ZoneInfo(tz)).utcoffset() or tz.endswith(
        "Santiago"
    )


def test_a_zone_rule_change_does_not_renew_twice_in_one_month(sessions):
    """The next renewal instant is stored in UTC. If the zone's rules move local midnight
    after it was stored (tzdata update; here: the zone itself changes), the due cycle is
    still the anchor day, and the month gets one renewal."""
    ids = story(sessions, now=datetime(2026, 11, 10, tzinfo=UTC), cycle_day=1)
    transaction(
        sessions,
        lambda s: s.execute(
            update(Account).where(Account.id == ids["account"]).values(timezone="America/New_York")
        ),
    )
    seen = _walk(sessions, ids["account"], datetime(2027, 1, 15, tzinfo=UTC))
    assert [start for _, start in seen] == [date(2026, 12, 1), date(2027, 1, 1)]
    assert _account(sessions, ids["account"]).next_renewal_at == _local(
        date(2027, 2, 1), "America/New_York"
    )
