"""The ledger side of the Slack app: claiming alerts with a lease (so two deliverers never
post the same alert), linking workspaces, and the balance forecast."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from ledger import outbox
from ledger.accounts import account_for_team, set_alert_channel
from ledger.charges import charge
from ledger.db import transaction
from ledger.errors import InvalidInput
from ledger.forecast import forecast
from ledger.slack_workspaces import (
    account_for_install,
    claim_due_alerts,
    link_team,
    release_alerts,
)
from ledger.usage import used
from tests.support.factories import NOW, story


def _alerts(sessions, ids, n=3):
    def work(s):
        for i in range(n):
            outbox.add(s, ids["account"], "alert.plan_low", {"i": i}, now=NOW)
        outbox.add(s, ids["account"], outbox.RECHARGE_REQUESTED, {}, now=NOW)

    transaction(sessions, work)


def test_claimed_alerts_are_not_offered_again_until_the_lease_ends(sessions):
    ids = story(sessions)
    _alerts(sessions, ids)
    first = transaction(sessions, lambda s: [m.id for m in claim_due_alerts(s, now=NOW)])
    assert len(first) == 3  # recharge requests are the payments part's, not alerts
    assert (
        transaction(sessions, lambda s: claim_due_alerts(s, now=NOW + timedelta(minutes=1))) == []
    )
    again = transaction(
        sessions, lambda s: [m.id for m in claim_due_alerts(s, now=NOW + timedelta(minutes=2))]
    )
    assert again == first  # a deliverer that died lets them come back
    transaction(sessions, lambda s: [outbox.mark_delivered(s, i, now=NOW) for i in first])
    assert transaction(sessions, lambda s: claim_due_alerts(s, now=NOW + timedelta(hours=1))) == []


def test_two_deliverers_at_once_never_claim_the_same_alert(sessions):
    ids = story(sessions)
    _alerts(sessions, ids, n=20)
    claimed: list[list[int]] = []
    barrier = threading.Barrier(4)

    def deliverer():
        barrier.wait()
        claimed.append(
            transaction(sessions, lambda s: [m.id for m in claim_due_alerts(s, now=NOW, limit=8)])
        )

    threads = [threading.Thread(target=deliverer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    every = [i for batch in claimed for i in batch]
    assert len(every) == len(set(every)) == 20


def test_release_makes_waiting_alerts_due_now(sessions):
    ids = story(sessions)
    _alerts(sessions, ids, n=2)
    transaction(
        sessions,
        lambda s: [outbox.mark_failed(s, m.id, "no channel", now=NOW) for m in outbox.pending(s)],
    )
    assert transaction(sessions, lambda s: claim_due_alerts(s, now=NOW)) == []
    transaction(sessions, lambda s: set_alert_channel(s, ids["account"], "C1"))
    assert transaction(sessions, lambda s: release_alerts(s, ids["account"], now=NOW)) == 2
    assert len(transaction(sessions, lambda s: claim_due_alerts(s, now=NOW))) == 2


def test_linking_and_installing_workspaces(sessions):
    ids = story(sessions, team="T0001")
    account, created = transaction(sessions, lambda s: account_for_install(s, "T0001", "Acme Inc"))
    assert (account.id, created) == (ids["account"], False)
    account, created = transaction(sessions, lambda s: account_for_install(s, "T0002", "Beta"))
    assert created and account.name == "Beta" and account.plan_credits_per_cycle == 0
    with pytest.raises(InvalidInput, match="already linked to account"):
        transaction(sessions, lambda s: link_team(s, ids["account"], "T0002"))
    assert transaction(sessions, lambda s: account_for_team(s, "T0001").id) == ids["account"]


def test_forecast_spends_plan_then_wallet_at_the_recent_pace(sessions):
    ids = story(
        sessions,
        plan=1000,
        wallet=500,
        now=NOW - timedelta(days=8),
        cycle_day=(NOW - timedelta(days=8)).day,
    )
    for day in range(1, 8):
        transaction(sessions, lambda s, d=day: charge(s, ids["account"], ids["a"], "message", 70, idempotency_key=f"k{d}",
                                                       now=NOW - timedelta(days=d)))  # fmt: skip
    # usage older than the window (the 7 whole days before today) does not count
    transaction(sessions, lambda s: charge(s, ids["account"], ids["a"], "message", 300, idempotency_key="old",
                                           now=NOW - timedelta(days=7, hours=13)))  # fmt: skip
    window = (NOW.date() - timedelta(days=7), NOW.date() - timedelta(days=1))
    assert transaction(sessions, lambda s: used(s, ids["account"], *window)) == 490_000
    f = transaction(sessions, lambda s: forecast(s, ids["account"], now=NOW))
    assert f.per_day == 70_000
    # 1,000 - 490 - 300 = 210 plan credits left: 3 days; then 500 wallet credits: 50/7 days
    # (in whole seconds)
    assert f.plan_until == NOW + timedelta(days=3)
    assert f.wallet_until == NOW + timedelta(days=3, seconds=500 * 86_400 // 70)


def test_forecast_without_usage_or_outlasting_the_cycle(sessions):
    ids = story(sessions, now=NOW)
    assert transaction(sessions, lambda s: forecast(s, ids["account"], now=NOW)).per_day == 0
    transaction(
        sessions,
        lambda s: charge(s, ids["account"], ids["a"], "message", 7, idempotency_key="k", now=NOW),
    )
    f = transaction(sessions, lambda s: forecast(s, ids["account"], now=NOW + timedelta(days=1)))
    assert f.per_day == 1000 and f.plan_until is None and f.wallet_until is None  # renews first


def test_an_alert_waiting_for_its_retry_holds_back_the_accounts_later_alerts(sessions):
    # Found by the simulation (tests/sim/regressions/alert-order.json): an alert written
    # while an earlier one waited out a Slack outage was posted before it.
    ids = story(sessions)
    _alerts(sessions, ids, n=1)
    first = transaction(sessions, lambda s: [m.id for m in claim_due_alerts(s, now=NOW)])
    transaction(sessions, lambda s: outbox.mark_failed(s, first[0], "slack 503", now=NOW))
    later = NOW + timedelta(seconds=1)
    transaction(
        sessions, lambda s: outbox.add(s, ids["account"], "alert.agent_stopped", {}, now=later)
    )
    assert transaction(sessions, lambda s: claim_due_alerts(s, now=later)) == []
    retry = NOW + outbox.backoff(1)
    claimed = transaction(sessions, lambda s: [m.kind for m in claim_due_alerts(s, now=retry)])
    assert claimed == ["alert.plan_low", "alert.agent_stopped"]


def test_an_alert_a_deliverer_died_posting_holds_back_the_accounts_later_alerts(sessions):
    # Found by the simulation (tests/sim/regressions/alert-order-after-crash.json): the
    # process died between Slack's answer and marking the alert delivered; an alert
    # written next was posted before the lease let the first one go out again.
    ids = story(sessions)
    _alerts(sessions, ids, n=1)
    assert len(transaction(sessions, lambda s: claim_due_alerts(s, now=NOW))) == 1
    later = NOW + timedelta(seconds=30)
    transaction(
        sessions, lambda s: outbox.add(s, ids["account"], "alert.agent_stopped", {}, now=later)
    )
    assert transaction(sessions, lambda s: claim_due_alerts(s, now=later)) == []
    lease_over = NOW + timedelta(minutes=2)
    claimed = transaction(sessions, lambda s: [m.kind for m in claim_due_alerts(s, now=lease_over)])
    assert claimed == ["alert.plan_low", "alert.agent_stopped"]
