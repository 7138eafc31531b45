"""The run-out forecast: plan credits then the wallet at the last 7 days' pace, read from the
usage rollup, never past a horizon of a year and never overflowing (issue 10 item 19)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.slack.blocks.dashboard import forecast_words
from ledger.charges import charge
from ledger.db import transaction
from ledger.forecast import HORIZON, forecast, project
from tests.support.factories import NOW, story

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
amounts = st.integers(min_value=0, max_value=10**18)


@given(
    now=moments,
    per_day=amounts,
    plan=amounts,
    wallet=amounts,
    renewal_in=st.one_of(st.none(), st.integers(min_value=-2, max_value=40)),
)
def test_any_balance_at_any_pace_gives_a_forecast_within_the_horizon(
    now, per_day, plan, wallet, renewal_in
):
    renewal = None if renewal_in is None else now + timedelta(days=renewal_in)
    f = project(now, per_day, plan, wallet, renewal)
    if per_day == 0:
        assert (f.plan_until, f.wallet_until, f.plan_beyond, f.wallet_beyond) == (
            None,
            None,
            False,
            False,
        )
        return
    if f.plan_until is not None:
        seconds = int((f.plan_until - now).total_seconds())
        # runs out after whole seconds of the pace, no later than the balance allows
        assert seconds * per_day <= plan * 86_400 < (seconds + 1) * per_day
        assert f.plan_until <= now + HORIZON and not f.plan_beyond
        assert renewal is None or f.plan_until < renewal
    if f.wallet_until is not None:
        assert f.plan_until is not None and f.plan_until <= f.wallet_until <= now + HORIZON
    if f.plan_beyond:
        assert plan * 86_400 // per_day > HORIZON.total_seconds() and f.wallet_until is None
    if f.wallet_beyond:
        assert (plan * 86_400 // per_day) + (wallet * 86_400 // per_day) > HORIZON.total_seconds()
    words = forecast_words(f, "Pacific/Kiritimati")  # every outcome is a sentence, no error
    assert words.endswith(".")


def test_a_large_wallet_and_a_quiet_week_last_more_than_a_year(sessions):
    # issue 10 item 19: 500,000 credits and one message in 7 days raised OverflowError
    ids = story(sessions, plan=0, wallet=500_000, now=NOW - timedelta(days=9))
    transaction(sessions, lambda s: charge(
        s, ids["account"], ids["b"], "message", idempotency_key="one", now=NOW - timedelta(days=3)))  # fmt: skip
    f = transaction(sessions, lambda s: forecast(s, ids["account"], now=NOW))
    assert f.per_day == 1000 // 7 and f.wallet_beyond and f.wallet_until is None
    assert forecast_words(f, "UTC").endswith("the wallet more than a year.")
    # a little more usage promised "lasts until 3769": still beyond the horizon
    for n in range(10):
        transaction(sessions, lambda s, n=n: charge(
            s, ids["account"], ids["b"], "message", idempotency_key=f"m{n}", now=NOW - timedelta(days=2)))  # fmt: skip
    assert transaction(sessions, lambda s: forecast(s, ids["account"], now=NOW)).wallet_beyond
