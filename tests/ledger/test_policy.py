"""The charge policy on its own: no database, every rule it holds (BRIEF rules 3-7, 10)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from ledger import policy
from ledger.outbox import RECHARGE_REQUESTED, Alert
from ledger.units import credits
from tests.support.snapshots import MONTH, NEXT_MONTH, after, prices, snapshot, snapshots


def kinds(decision: policy.Decision) -> list[str]:
    return [kind for kind, _ in decision.messages]


def test_plan_credits_go_first_and_a_use_balance_agent_splits_the_rest_to_the_wallet():
    s = snapshot(behaviour="use_balance", plan_balance=credits(5), wallet_balance=credits(100))
    d = policy.decide(s, credits(10), MONTH)
    assert (d.allowed, d.from_plan, d.from_wallet) == (True, credits(5), credits(5))
    assert d.month_spend == credits(10) and d.status == "active"


def test_a_stop_agent_never_touches_the_wallet():
    s = snapshot(plan_balance=credits(5), wallet_balance=credits(100))
    d = policy.decide(s, credits(10), MONTH)
    assert (d.allowed, d.refused, d.from_plan, d.from_wallet) == (False, "plan_exhausted", 0, 0)
    assert d.change == policy.StatusChange("stopped", "plan_exhausted")
    assert kinds(d) == [Alert.PLAN_EXHAUSTED, Alert.AGENT_STOPPED]
    assert d.flag_plan_exhausted


def test_a_use_balance_agent_short_of_plan_and_wallet_stops_with_wallet_empty():
    s = snapshot(behaviour="use_balance", plan_balance=credits(5), wallet_balance=credits(4))
    d = policy.decide(s, credits(10), MONTH)
    assert (d.refused, d.from_plan, d.from_wallet) == ("wallet_empty", 0, 0)
    assert d.month_spend is None, "a refused charge spends nothing"


def test_the_monthly_limit_stops_a_stop_agent_and_moves_a_use_balance_agent_to_the_wallet():
    limited = {"monthly_limit": credits(25), "month_spend": credits(20)}
    stop = policy.decide(snapshot(**limited), credits(10), MONTH)
    assert stop.refused == "monthly_limit"
    goes_on = policy.decide(
        snapshot(behaviour="use_balance", wallet_balance=credits(50), **limited), credits(10), MONTH
    )
    assert (goes_on.from_plan, goes_on.from_wallet) == (credits(5), credits(5))
    assert kinds(goes_on) == [Alert.LIMIT_100]


def test_a_stopped_agent_is_refused_with_its_reason_and_no_second_alert():
    s = snapshot(status="stopped", stop_reason="plan_exhausted", plan_exhausted_alerted=True)
    d = policy.decide(s, credits(1), MONTH)
    assert (d.refused, d.change, d.messages) == ("plan_exhausted", None, ())


def test_a_new_month_clears_a_monthly_limit_and_starts_the_spend_at_zero():
    s = snapshot(
        status="stopped", stop_reason="monthly_limit", monthly_limit=credits(10),
        month_spend=credits(10),
    )  # fmt: skip
    assert policy.decide(s, credits(1), MONTH).refused == "monthly_limit"
    d = policy.decide(s, credits(1), NEXT_MONTH)
    assert d.allowed and d.change == policy.RESUMED
    assert (d.month, d.month_spend) == (NEXT_MONTH, credits(1))
    (resumed,) = [p for k, p in d.messages if k == Alert.AGENT_RESUMED]
    assert resumed == {"agent_id": 7, "agent_name": "A", "previous_reason": "monthly_limit",
                       "cause": "new_month"}  # fmt: skip


def test_a_new_month_does_not_clear_another_reason_but_restarts_the_spend():
    s = snapshot(status="stopped", stop_reason="plan_exhausted", month_spend=credits(10))
    d = policy.decide(s, credits(1), NEXT_MONTH)
    assert (d.refused, d.month, d.month_spend) == ("plan_exhausted", NEXT_MONTH, 0)


def test_the_agent_stops_with_the_charge_that_leaves_it_nothing():
    d = policy.decide(snapshot(plan_balance=credits(10)), credits(10), MONTH)
    assert d.allowed and d.status == "stopped"
    assert d.change == policy.StatusChange("stopped", "plan_exhausted")
    at_limit = policy.decide(snapshot(monthly_limit=credits(10)), credits(10), MONTH)
    assert at_limit.change == policy.StatusChange("stopped", "monthly_limit")


def test_alerts_fire_as_their_thresholds_are_crossed():
    plan_low = policy.decide(snapshot(plan_balance=credits(205)), credits(10), MONTH)
    assert kinds(plan_low) == [Alert.PLAN_LOW]
    assert plan_low.messages[0][1] == {"plan_balance": credits(195), "plan_grant": credits(1000)}
    below = policy.decide(snapshot(plan_balance=credits(195)), credits(10), MONTH)
    assert kinds(below) == [], "already under the threshold: no second alert"
    wallet_low = policy.decide(
        snapshot(behaviour="use_balance", plan_balance=0, wallet_balance=credits(1005),
                 plan_exhausted_alerted=True),
        credits(10), MONTH,
    )  # fmt: skip
    assert kinds(wallet_low) == [Alert.WALLET_LOW]
    eighty = policy.decide(snapshot(monthly_limit=credits(100), month_spend=credits(75)),
                           credits(10), MONTH)  # fmt: skip
    assert kinds(eighty) == [Alert.LIMIT_80]


def test_a_wallet_charge_under_the_threshold_asks_for_one_recharge():
    # A threshold of $20.00 is 2,000 credits at the default price.
    recharging = {"behaviour": "use_balance", "plan_balance": 0, "plan_exhausted_alerted": True,
                  "wallet_balance": credits(2000), "auto_recharge_enabled": True,
                  "auto_recharge_threshold_minor": 2000}  # fmt: skip
    d = policy.decide(snapshot(**recharging), credits(10), MONTH)
    assert d.request_recharge and (RECHARGE_REQUESTED, {"wallet_balance": credits(1990)}) in (
        d.messages
    )
    for quiet in ({"recharge_requested": True}, {"auto_recharge_paused": True},
                  {"auto_recharge_enabled": False}, {"wallet_balance": credits(3000)}):  # fmt: skip
        d = policy.decide(snapshot(**{**recharging, **quiet}), credits(10), MONTH)
        assert not d.request_recharge and RECHARGE_REQUESTED not in kinds(d), quiet


def test_the_rules_shared_with_other_writers():
    assert policy.room(credits(10), credits(5), "stop", None, 0) == credits(10)
    assert policy.room(credits(10), credits(5), "use_balance", credits(12), credits(8)) == (
        credits(9)
    )
    assert policy.short_reason("use_balance", 0, 1) == "wallet_empty"
    assert policy.short_reason("stop", 0, 1) == "monthly_limit"
    assert policy.short_reason("stop", None, 1) == "plan_exhausted"
    assert policy.resumes(0, credits(5), "use_balance", None, 0)
    assert not policy.resumes(0, credits(5), "stop", None, 0)
    assert policy.spend_in(NEXT_MONTH, MONTH, credits(3)) == 0
    assert policy.spend_after_refund(MONTH, credits(3), MONTH, credits(5)) == 0
    assert policy.spend_after_refund(NEXT_MONTH, credits(3), MONTH, credits(1)) is None


@given(s=snapshots(), price=prices, month=st.sampled_from((MONTH, NEXT_MONTH)))
def test_any_decision_keeps_the_rules(s, price, month):
    d = policy.decide(s, price, month)
    spend = s.month_spend if s.month == month else 0
    under_limit = None if s.monthly_limit is None else max(0, s.monthly_limit - spend)
    plan_room = s.plan_balance if under_limit is None else min(s.plan_balance, under_limit)
    may_work = s.status == "active" or (s.stop_reason == "monthly_limit" and s.month != month)
    covered = plan_room + (s.wallet_balance if s.behaviour == "use_balance" else 0)

    # All or nothing, never more than the allowed sources hold, plan credits first.
    assert d.allowed == (may_work and covered >= price)
    if d.allowed:
        assert d.from_plan + d.from_wallet == price and d.month_spend == spend + price
        assert d.from_plan <= plan_room and d.from_wallet <= s.wallet_balance
        assert d.from_wallet == 0 or d.from_plan == min(price, plan_room)
    else:
        assert (d.from_plan, d.from_wallet) == (0, 0) and d.status == "stopped"
        assert d.month_spend == (None if s.month == month else 0)
    if s.behaviour == "stop":
        assert d.from_wallet == 0, "a stop agent never touches the wallet"

    # A refusal carries the right reason, and stops the agent once.
    if not may_work:
        assert d.refused == s.stop_reason
    elif not d.allowed:
        expected = (
            "wallet_empty" if s.behaviour == "use_balance"
            else "monthly_limit" if under_limit is not None and under_limit < price
            else "plan_exhausted"
        )  # fmt: skip
        assert d.refused == expected
    stops = d.change is not None and d.change.status == "stopped"
    assert (Alert.AGENT_STOPPED in kinds(d)) == stops
    if d.refused is not None:
        assert stops == (s.status != "stopped" or s.stop_reason != d.refused)
    else:
        left_plan = s.plan_balance - d.from_plan
        if s.monthly_limit is not None:
            left_plan = min(left_plan, max(0, s.monthly_limit - d.month_spend))
        left_wallet = s.wallet_balance - d.from_wallet if s.behaviour == "use_balance" else 0
        assert (d.status == "stopped") == (left_plan + left_wallet == 0) == stops

    # Each message at most once; flags only with their message.
    assert max(Counter(kinds(d)).values(), default=0) <= 1
    assert d.flag_plan_exhausted == (Alert.PLAN_EXHAUSTED in kinds(d))
    assert not (d.flag_plan_exhausted and s.plan_exhausted_alerted)
    assert d.request_recharge == (RECHARGE_REQUESTED in kinds(d))
    if d.request_recharge:
        assert d.from_wallet > 0 and s.auto_recharge_enabled
        assert not s.auto_recharge_paused and not s.recharge_requested


@given(
    s=snapshots().filter(lambda s: s.status == "active" and s.month == MONTH),
    charges=st.lists(prices, min_size=1, max_size=40),
)
def test_within_a_month_each_alert_fires_at_most_once(s, charges):
    """Balances only go down and spend only up between renewals and top-ups: every
    threshold is crossed at most once, so every alert fires at most once, and an agent
    that stopped stays refused."""
    s = s._replace(plan_exhausted_alerted=False, recharge_requested=False)
    held = s.plan_balance + s.wallet_balance
    fired: Counter[str] = Counter()
    taken = 0
    stopped = False
    for price in charges:
        d = policy.decide(s, price, MONTH)
        assert not (stopped and d.allowed), "a stopped agent stays refused until it resumes"
        fired.update(kinds(d))
        taken += d.from_plan + d.from_wallet
        s = after(s, d)
        stopped = s.status == "stopped"
    assert max(fired.values(), default=0) <= 1, fired
    assert Alert.AGENT_RESUMED not in fired
    assert s.plan_balance >= 0 and s.wallet_balance >= 0
    assert s.plan_balance + s.wallet_balance == held - taken
