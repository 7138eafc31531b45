"""The policy's budget and alert-level rules on their own (pure, with hypothesis): the budget
is never passed, the charge that uses it up stops everyone, and every level fires at most
once per crossing."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from ledger import policy
from ledger.outbox import Alert
from ledger.units import credits
from tests.support.snapshots import MONTH, NEXT_MONTH, after, budget_snapshots, prices, snapshot


def kinds(decision: policy.Decision) -> list[str]:
    return [kind for kind, _ in decision.messages]


def test_a_charge_past_the_budget_is_refused_to_the_credit():
    s = snapshot(monthly_budget=credits(30), account_month_spend=credits(21))
    assert policy.decide(s, credits(9), MONTH).allowed
    over = policy.decide(s, credits(10), MONTH)
    assert (over.refused, over.change) == (
        "account_budget",
        policy.StatusChange("stopped", "account_budget"),
    )
    assert kinds(over) == [Alert.AGENT_STOPPED]


def test_the_charge_that_uses_up_the_budget_stops_everyone_with_one_alert():
    s = snapshot(monthly_budget=credits(30), account_month_spend=credits(20))
    d = policy.decide(s, credits(10), MONTH)
    assert d.allowed and d.stop_all and d.status == "stopped"
    assert d.change == policy.StatusChange("stopped", "account_budget")
    assert kinds(d) == [Alert.BUDGET_REACHED]
    assert d.account_spend == credits(30)


def test_last_months_spend_does_not_count_against_this_months_budget():
    s = snapshot(
        monthly_budget=credits(30), account_month="2026-10", account_month_spend=credits(30),
        month="2026-10", status="stopped", stop_reason="account_budget",
    )  # fmt: skip
    d = policy.decide(s, credits(10), MONTH)
    assert d.allowed and d.account_spend == credits(10) and d.change == policy.RESUMED


@given(s=budget_snapshots(), price=prices, month=st.sampled_from((MONTH, NEXT_MONTH)))
def test_any_decision_keeps_the_budget(s, price, month):
    d = policy.decide(s, price, month)
    spent = s.account_month_spend if s.account_month == month else 0
    left = None if s.monthly_budget is None else max(0, s.monthly_budget - spent)
    if d.allowed:
        assert d.account_spend == spent + price
        assert left is None or price <= left, "never past the budget"
        assert d.stop_all == (left is not None and price == left)
    else:
        assert d.account_spend is None and not d.stop_all
        if left is not None and price > left and s.status == "active":
            assert d.refused == "account_budget"
    if s.stop_reason == "account_budget" and s.status == "stopped" and s.monthly_budget is None:
        assert d.refused != "account_budget", "no budget holds an agent back"
    stops = d.change is not None and d.change.status == "stopped"
    assert (Alert.AGENT_STOPPED in kinds(d) or Alert.BUDGET_REACHED in kinds(d)) == stops or (
        d.refused is not None and not stops
    )
    assert max(Counter(kinds(d)).values(), default=0) <= 1
    assert (Alert.BUDGET_REACHED in kinds(d)) == d.stop_all
    assert d.flag_plan_low == (Alert.PLAN_LOW in kinds(d))
    assert d.flag_wallet_low == (Alert.WALLET_LOW in kinds(d))


@given(
    s=budget_snapshots().filter(lambda s: s.status == "active" and s.month == MONTH),
    charges=st.lists(prices, min_size=1, max_size=40),
)
def test_within_a_month_each_level_fires_at_most_once(s, charges):
    """Balances only fall and spend only rises between renewals and top-ups: each level is
    crossed once at most, so (kind, level) never fires twice, and the budget is reached
    once at most."""
    s = s._replace(plan_exhausted_alerted=False, recharge_requested=False, account_month=MONTH)
    fired: Counter[tuple[str, object]] = Counter()
    for price in charges:
        d = policy.decide(s, price, MONTH)
        for kind, payload in d.messages:
            level = payload.get("level", payload.get("threshold"))
            if kind == Alert.PLAN_LOW:
                level = payload["plan_balance"] * 100 // max(1, s.plan_grant)
                level = min(
                    (p for p in policy.levels(s.plan_alert_levels)
                     if payload["plan_balance"] <= s.plan_grant * p // 100),
                    default=level,
                )  # fmt: skip
            fired[(kind, level)] += 1
        s = after(s, d)
        if d.stop_all:
            break
    assert max(fired.values(), default=0) <= 1, fired
    if s.monthly_budget is not None:
        assert s.account_month_spend <= max(s.monthly_budget, s.account_month_spend - 0)
