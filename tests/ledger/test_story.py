"""The customer document's story, rule by rule (BRIEF rules 3-7), on SQLite and PostgreSQL.

Plan of 1,000 credits, agent A set to `stop`, agent B to `use_balance`, wallet 500.
Calls cost 10 credits a minute, messages 1 credit.
"""

from __future__ import annotations

from datetime import timedelta

from ledger import outbox
from ledger.agents import update_agent
from ledger.db import transaction
from ledger.renewals import renew_due
from ledger.units import credits
from ledger.verify import verify
from ledger.wallet import credit_wallet
from tests.support.factories import NOW, minute, story, view


def agent_state(sessions, ids, name):
    return next((a.status, a.stop_reason) for a in view(sessions, ids).agents if a.name == name)


def alerts(sessions, ids, kind=None):
    found = transaction(sessions, lambda s: outbox.pending(s, account_id=ids["account"]))
    return [m.payload for m in found if kind is None or m.kind == kind]


def test_plan_first_then_stop_agent_stops_and_use_balance_agent_goes_on(sessions):
    ids = story(sessions)
    # A and B share the plan: 100 minutes of 10 credits.
    for n in range(50):
        assert minute(sessions, ids, "a", f"a{n}").from_plan == credits(10)
        assert minute(sessions, ids, "b", f"b{n}").from_plan == credits(10)
    assert view(sessions, ids).plan_balance == 0
    assert view(sessions, ids).wallet_balance == credits(500), "plan goes first"

    refused = minute(sessions, ids, "a", "a-after")
    assert not refused.allowed and refused.reason == "plan_exhausted"
    assert agent_state(sessions, ids, "A") == ("stopped", "plan_exhausted")

    went_on = minute(sessions, ids, "b", "b-after")
    assert went_on.allowed and went_on.from_wallet == credits(10) and went_on.from_plan == 0
    assert view(sessions, ids).wallet_balance == credits(490)

    # A stopped agent is refused with its reason until it resumes, and never touches the wallet.
    again = minute(sessions, ids, "a", "a-again")
    assert (again.allowed, again.reason) == (False, "plan_exhausted")
    assert view(sessions, ids).wallet_balance == credits(490)
    assert transaction(sessions, verify) == []


def test_one_charge_splits_across_plan_and_wallet(sessions):
    ids = story(sessions, plan=15)
    first = minute(sessions, ids, "b", "b1")
    second = minute(sessions, ids, "b", "b2")
    assert (first.from_plan, first.from_wallet) == (credits(10), 0)
    assert (second.from_plan, second.from_wallet) == (credits(5), credits(5))
    assert (second.plan_balance, second.wallet_balance) == (0, credits(495))


def test_no_partial_charge_and_no_negative_balance(sessions):
    ids = story(sessions, plan=5, wallet=0)
    refused = minute(sessions, ids, "a", "a1")
    assert not refused.allowed and refused.from_plan == 0
    assert view(sessions, ids).plan_balance == credits(5), "nothing was taken"
    refused_b = minute(sessions, ids, "b", "b1")
    assert (refused_b.allowed, refused_b.reason) == (False, "wallet_empty")
    assert view(sessions, ids).plan_balance == credits(5)
    # Messages of 1 credit still fit for a fresh agent... but A and B are stopped now.
    assert agent_state(sessions, ids, "B") == ("stopped", "wallet_empty")


def test_use_balance_agent_stops_when_plan_and_wallet_are_short_and_a_wallet_credit_resumes_it(
    sessions,
):
    ids = story(sessions, plan=10, wallet=10)
    assert minute(sessions, ids, "b", "b1").from_plan == credits(10)
    assert minute(sessions, ids, "b", "b2").from_wallet == credits(10)
    # Nothing left for B: it stops at once rather than on its next request.
    assert agent_state(sessions, ids, "B") == ("stopped", "wallet_empty")
    assert (minute(sessions, ids, "b", "b3").reason) == "wallet_empty"

    transaction(
        sessions,
        lambda s: credit_wallet(s, ids["account"], credits(100), key="pi_1", now=NOW),
    )
    assert agent_state(sessions, ids, "B") == ("active", None)
    assert minute(sessions, ids, "b", "b4").from_wallet == credits(10)
    resumed = alerts(sessions, ids, "alert.agent_resumed")
    assert resumed[-1]["agent_name"] == "B" and resumed[-1]["cause"] == "wallet_credit"


def test_a_renewal_resumes_the_stop_agent_and_expires_the_rest(sessions):
    ids = story(sessions, plan=30)
    for n in range(3):
        minute(sessions, ids, "a", f"a{n}")
    assert minute(sessions, ids, "a", "a3").reason == "plan_exhausted"
    # The B agent was never charged: a wallet credit does not resume a stop agent.
    transaction(
        sessions, lambda s: credit_wallet(s, ids["account"], credits(5), key="pi_2", now=NOW)
    )
    assert agent_state(sessions, ids, "A") == ("stopped", "plan_exhausted")

    renewal_time = view(sessions, ids).next_renewal_at
    done = transaction(sessions, lambda s: renew_due(s, ids["account"], now=renewal_time))
    assert [r.granted for r in done] == [credits(30)]
    assert agent_state(sessions, ids, "A") == ("active", None)
    assert view(sessions, ids, now=renewal_time).plan_balance == credits(30)
    renewed = alerts(sessions, ids, "alert.cycle_renewed")
    assert renewed and renewed[-1]["granted"] == credits(30)


def test_plan_credits_left_at_renewal_expire(sessions):
    ids = story(sessions, plan=100)
    minute(sessions, ids, "a", "a1")
    renewal_time = view(sessions, ids).next_renewal_at
    (done,) = transaction(sessions, lambda s: renew_due(s, ids["account"], now=renewal_time))
    assert done.expired == credits(90) and done.granted == credits(100)
    assert view(sessions, ids).plan_balance == credits(100), "no rollover"
    assert transaction(sessions, verify) == []


def test_monthly_limit_stops_a_stop_agent(sessions):
    ids = story(sessions)
    transaction(
        sessions, lambda s: update_agent(s, ids["account"], ids["a"], monthly_limit=credits(30))
    )
    for n in range(3):
        assert minute(sessions, ids, "a", f"a{n}").allowed
    assert agent_state(sessions, ids, "A") == ("stopped", "monthly_limit")
    refused = minute(sessions, ids, "a", "a3")
    assert (refused.allowed, refused.reason) == (False, "monthly_limit")
    assert view(sessions, ids).plan_balance == credits(970)
    kinds = [
        m.kind
        for m in transaction(sessions, lambda s: outbox.pending(s, account_id=ids["account"]))
    ]
    assert kinds.count("alert.limit_80") == 1 and kinds.count("alert.limit_100") == 1


def test_monthly_limit_moves_a_use_balance_agent_to_the_wallet(sessions):
    ids = story(sessions)
    transaction(
        sessions, lambda s: update_agent(s, ids["account"], ids["b"], monthly_limit=credits(25))
    )
    first, second, third = (minute(sessions, ids, "b", f"b{n}") for n in range(3))
    assert (first.from_plan, first.from_wallet) == (credits(10), 0)
    assert (second.from_plan, second.from_wallet) == (credits(10), 0)
    # Only 5 credits of the limit are left: the rest of this minute comes from the wallet.
    assert (third.from_plan, third.from_wallet) == (credits(5), credits(5))
    fourth = minute(sessions, ids, "b", "b3")
    assert (fourth.from_plan, fourth.from_wallet) == (0, credits(10))
    assert agent_state(sessions, ids, "B") == ("active", None)


def test_raising_or_removing_the_limit_resumes_the_agent(sessions):
    ids = story(sessions)
    transaction(
        sessions, lambda s: update_agent(s, ids["account"], ids["a"], monthly_limit=credits(10))
    )
    minute(sessions, ids, "a", "a1")
    assert agent_state(sessions, ids, "A") == ("stopped", "monthly_limit")
    _, resumed = transaction(
        sessions, lambda s: update_agent(s, ids["account"], ids["a"], monthly_limit=credits(20))
    )
    assert resumed and agent_state(sessions, ids, "A") == ("active", None)
    minute(sessions, ids, "a", "a2")
    assert agent_state(sessions, ids, "A") == ("stopped", "monthly_limit")
    _, resumed = transaction(
        sessions, lambda s: update_agent(s, ids["account"], ids["a"], monthly_limit=None)
    )
    assert resumed and minute(sessions, ids, "a", "a3").allowed


def test_a_new_month_resumes_an_agent_stopped_by_its_limit(sessions):
    ids = story(sessions)
    transaction(
        sessions, lambda s: update_agent(s, ids["account"], ids["a"], monthly_limit=credits(10))
    )
    minute(sessions, ids, "a", "a1")
    assert minute(sessions, ids, "a", "a2").reason == "monthly_limit"
    next_month = NOW.replace(month=12, day=1, hour=0, minute=1)
    later = minute(sessions, ids, "a", "a3", now=next_month)
    assert later.allowed
    assert next(
        a.month_spend for a in view(sessions, ids, now=next_month).agents if a.name == "A"
    ) == credits(10)


def test_switching_to_use_balance_resumes_while_the_wallet_has_credits(sessions):
    ids = story(sessions, plan=10, wallet=0)
    minute(sessions, ids, "a", "a1")
    assert agent_state(sessions, ids, "A") == ("stopped", "plan_exhausted")
    _, resumed = transaction(
        sessions, lambda s: update_agent(s, ids["account"], ids["a"], behaviour="use_balance")
    )
    assert not resumed, "the wallet is empty: nothing to go on with"
    transaction(sessions, lambda s: update_agent(s, ids["account"], ids["a"], behaviour="stop"))
    transaction(sessions, lambda s: credit_wallet(s, ids["account"], credits(50), key="t", now=NOW))
    assert agent_state(sessions, ids, "A") == ("stopped", "plan_exhausted")
    _, resumed = transaction(
        sessions, lambda s: update_agent(s, ids["account"], ids["a"], behaviour="use_balance")
    )
    assert resumed and minute(sessions, ids, "a", "a2").from_wallet == credits(10)


def test_saving_an_agents_settings_unchanged_does_not_resume_it(sessions):
    # Found by the simulation (tests/sim/regressions/unchanged-settings.json): 5 credits
    # left stop a `stop` agent on a 10-credit minute; an admin saving its settings as they
    # were resumed it, with an "agent resumed" alert, though nothing had cleared its reason.
    ids = story(sessions, plan=15, wallet=0)
    minute(sessions, ids, "a", "a1")
    minute(sessions, ids, "a", "a2")
    assert agent_state(sessions, ids, "A") == ("stopped", "plan_exhausted")
    _, resumed = transaction(
        sessions,
        lambda s: update_agent(s, ids["account"], ids["a"], behaviour="stop", monthly_limit=None),
    )
    assert not resumed and agent_state(sessions, ids, "A") == ("stopped", "plan_exhausted")
    assert alerts(sessions, ids, "alert.agent_resumed") == []


def test_alerts_fire_once_per_crossing_and_rearm(sessions):
    ids = story(sessions, plan=100, wallet=0)
    for n in range(9):
        minute(sessions, ids, "a", f"a{n}")
    assert len(alerts(sessions, ids, "alert.plan_low")) == 1, "crossed 20% once"
    minute(sessions, ids, "a", "a9")
    assert len(alerts(sessions, ids, "alert.plan_exhausted")) == 1
    minute(sessions, ids, "a", "a10")
    assert len(alerts(sessions, ids, "alert.plan_exhausted")) == 1, "not again while exhausted"
    renewal_time = view(sessions, ids).next_renewal_at
    transaction(sessions, lambda s: renew_due(s, ids["account"], now=renewal_time))
    for n in range(10):
        minute(sessions, ids, "a", f"c{n}", now=renewal_time + timedelta(minutes=1))
    assert len(alerts(sessions, ids, "alert.plan_low")) == 2, "re-armed by the renewal"
    assert len(alerts(sessions, ids, "alert.plan_exhausted")) == 2


def test_wallet_low_alert(sessions):
    ids = story(sessions, plan=0, wallet=1010)
    minute(sessions, ids, "b", "b1")
    assert alerts(sessions, ids, "alert.wallet_low") == []
    minute(sessions, ids, "b", "b2")
    (low,) = alerts(sessions, ids, "alert.wallet_low")
    assert low["wallet_balance"] == credits(990)
    minute(sessions, ids, "b", "b3")
    assert len(alerts(sessions, ids, "alert.wallet_low")) == 1
