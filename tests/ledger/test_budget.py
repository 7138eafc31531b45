"""The account's monthly budget, on both databases: every agent's spend together, plan and
wallet credits alike, capped to the credit; reaching it stops every agent with
`account_budget`; raising or removing it, a refund, or a new month resumes them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ledger.agents import add_agent, get_agent
from ledger.audit import Actor, list_events
from ledger.budget import budget_view, parse_budget, set_budget
from ledger.charges import charge, refund
from ledger.db import transaction
from ledger.errors import FieldError
from ledger.rollover import accounts_to_roll, roll_account
from ledger.units import credits
from ledger.wallet import credit_wallet
from tests.support.factories import NOW, story
from tests.support.ledger_reads import pending_alerts

DECEMBER = datetime(2026, 12, 1, 0, 1, tzinfo=UTC)


def _budget(sessions, ids, amount, actor=None, now=NOW):
    return transaction(
        sessions,
        lambda s: set_budget(
            s, ids["account"], None if amount is None else credits(amount), actor=actor, now=now
        ),
    )


def _charge(sessions, ids, agent, unit, key, quantity=1, now=NOW):
    return transaction(
        sessions,
        lambda s: charge(
            s, ids["account"], ids[agent], unit, quantity, idempotency_key=key, now=now
        ),
    )


def _status(sessions, ids, agent):
    a = transaction(sessions, lambda s: get_agent(s, ids["account"], ids[agent]))
    return a.status, a.stop_reason


def _view(sessions, ids, now=NOW):
    return transaction(sessions, lambda s: budget_view(s, ids["account"], now=now))


def test_the_budget_holds_to_the_credit_and_its_last_credit_stops_every_agent(sessions):
    ids = story(sessions, plan=1000, wallet=0)
    _budget(sessions, ids, 30)
    assert _charge(sessions, ids, "a", "call_minute", "m1", 2).allowed  # 20 credits
    assert _charge(sessions, ids, "b", "message", "n1", 9).allowed  # 29
    # A call minute (10) no longer fits in the 1 credit left: refused, that agent stops.
    refused = _charge(sessions, ids, "a", "call_minute", "m2")
    assert (refused.allowed, refused.reason) == (False, "account_budget")
    assert _status(sessions, ids, "a") == ("stopped", "account_budget")
    assert _status(sessions, ids, "b") == ("active", None)
    # The last credit is spent: the budget is reached and every agent stops.
    last = _charge(sessions, ids, "b", "message", "n2")
    assert last.allowed and last.agent_status == "stopped"
    assert _status(sessions, ids, "b") == ("stopped", "account_budget")
    view = _view(sessions, ids)
    assert (view.month_spend, view.left, view.reached, view.agents_stopped) == (
        credits(30),
        0,
        True,
        2,
    )
    assert pending_alerts(sessions, "alert.budget_reached") == [
        {"month_spend": credits(30), "budget": credits(30)}
    ]
    again = _charge(sessions, ids, "b", "message", "n3")
    assert (again.allowed, again.reason) == (False, "account_budget")
    assert len(pending_alerts(sessions, "alert.agent_stopped")) == 1, "only a's own refusal"


def test_the_budget_counts_plan_and_wallet_credits_alike(sessions):
    ids = story(sessions, plan=5, wallet=100)
    _budget(sessions, ids, 15)
    split = _charge(sessions, ids, "b", "call_minute", "m1")
    assert (split.from_plan, split.from_wallet) == (credits(5), credits(5))
    assert _view(sessions, ids).month_spend == credits(10)
    from_wallet = _charge(sessions, ids, "b", "message", "n1", 5)
    assert from_wallet.allowed and from_wallet.from_wallet == credits(5)
    assert _view(sessions, ids).left == 0
    refused = _charge(sessions, ids, "b", "call_minute", "m2")
    assert refused.reason == "account_budget" and refused.wallet_balance == credits(90)


def test_raising_or_removing_the_budget_resumes_the_agents_it_stopped(sessions):
    ids = story(sessions, plan=1000, wallet=0)
    _budget(sessions, ids, 10)
    assert _charge(sessions, ids, "a", "call_minute", "m1").allowed
    assert _status(sessions, ids, "b") == ("stopped", "account_budget")
    view = _budget(sessions, ids, 20, actor=Actor.cli("ops"))
    assert (view.left, view.agents_stopped) == (credits(10), 0)
    assert _status(sessions, ids, "a") == _status(sessions, ids, "b") == ("active", None)
    resumed = pending_alerts(sessions, "alert.agent_resumed")
    assert {r["cause"] for r in resumed} == {"budget"} and len(resumed) == 2
    assert _charge(sessions, ids, "a", "call_minute", "m2").allowed
    assert _status(sessions, ids, "a") == ("stopped", "account_budget")
    _budget(sessions, ids, None)
    assert _status(sessions, ids, "a") == ("active", None)
    assert _charge(sessions, ids, "a", "call_minute", "m3").allowed
    trail = transaction(sessions, lambda s: list_events(s, ids["account"]))
    assert [(e.action, e.before, e.after) for e in trail if e.action == "budget"] == [
        ("budget", {"monthly_budget": credits(20)}, {"monthly_budget": None}),
        ("budget", {"monthly_budget": credits(10)}, {"monthly_budget": credits(20)}),
        ("budget", {"monthly_budget": None}, {"monthly_budget": credits(10)}),
    ]
    assert trail[1].actor_kind == "cli_operator" and trail[1].actor == "ops"


def test_lowering_the_budget_under_the_spend_stops_every_agent_with_one_alert(sessions):
    ids = story(sessions, plan=1000, wallet=0)
    assert _charge(sessions, ids, "a", "call_minute", "m1", 3).allowed
    view = _budget(sessions, ids, 25)
    assert view.reached and view.agents_stopped == 2
    assert (
        _status(sessions, ids, "a") == _status(sessions, ids, "b") == ("stopped", "account_budget")
    )
    assert len(pending_alerts(sessions, "alert.budget_reached")) == 1
    _budget(sessions, ids, 20)  # still under the spend: nothing more happens
    assert len(pending_alerts(sessions, "alert.budget_reached")) == 1


def test_a_new_month_resumes_the_agents_the_budget_stopped(sessions):
    ids = story(sessions, plan=1000, wallet=0)
    _budget(sessions, ids, 10)
    assert _charge(sessions, ids, "a", "call_minute", "m1").allowed
    # Lazily: the next charge of the new month is the first of a fresh budget.
    lazily = _charge(sessions, ids, "b", "message", "n1", now=DECEMBER)
    assert lazily.allowed and _view(sessions, ids, DECEMBER).month_spend == credits(1)
    # And by the rollover job, for the agent nobody asks about.
    assert transaction(sessions, lambda s: accounts_to_roll(s, now=DECEMBER)) == [ids["account"]]
    rolled = transaction(sessions, lambda s: roll_account(s, ids["account"], now=DECEMBER))
    assert ids["a"] in rolled.resumed
    assert _status(sessions, ids, "a") == ("active", None)


def test_a_refund_gives_the_budget_room_back(sessions):
    ids = story(sessions, plan=1000, wallet=0)
    _budget(sessions, ids, 10)
    minute = _charge(sessions, ids, "a", "call_minute", "m1")
    assert _status(sessions, ids, "b") == ("stopped", "account_budget")
    transaction(
        sessions,
        lambda s: refund(s, ids["account"], minute.entry_id, credits(4), key="r1", now=NOW),
    )
    assert _view(sessions, ids).left == credits(4)
    assert _status(sessions, ids, "b") == ("active", None)


def test_agents_stopped_for_something_else_keep_waiting_for_it(sessions):
    ids = story(sessions, plan=10, wallet=0)
    _budget(sessions, ids, 100)
    # b (use_balance) runs plan and wallet dry first: it waits for the wallet.
    assert _charge(sessions, ids, "b", "call_minute", "m1").allowed
    assert _status(sessions, ids, "b") == ("stopped", "wallet_empty")
    transaction(sessions, lambda s: set_budget(s, ids["account"], credits(10), now=NOW))
    assert _status(sessions, ids, "b") == ("stopped", "wallet_empty")
    # Topped up while the budget is used up: b could pay, but the budget holds it now.
    transaction(
        sessions,
        lambda s: credit_wallet(s, ids["account"], credits(50), key="t1", now=NOW),
    )
    assert _status(sessions, ids, "b") == ("stopped", "account_budget")
    # The budget removed, the wallet pays: b resumes.
    _budget(sessions, ids, None)
    assert _status(sessions, ids, "b") == ("active", None)


def test_an_agent_added_while_the_budget_is_used_up_starts_stopped(sessions):
    ids = story(sessions, plan=1000, wallet=0)
    _budget(sessions, ids, 10)
    assert _charge(sessions, ids, "a", "call_minute", "m1").allowed
    late = transaction(sessions, lambda s: add_agent(s, ids["account"], "C", now=NOW))
    assert (late.status, late.stop_reason) == ("stopped", "account_budget")


def test_budget_levels_warn_before_the_budget_is_reached(sessions):
    ids = story(sessions, plan=1000, wallet=0)
    _budget(sessions, ids, 100)
    for n in range(7):
        assert _charge(sessions, ids, "a", "call_minute", f"m{n}").allowed
    assert pending_alerts(sessions, "alert.budget_level") == []
    assert _charge(sessions, ids, "a", "call_minute", "m7").allowed  # 80 of 100
    assert pending_alerts(sessions, "alert.budget_level") == [
        {"month_spend": credits(80), "budget": credits(100), "level": 80}
    ]


@pytest.mark.parametrize(
    "text, expected",
    [("500", credits(500)), ("1,000", credits(1000)), ("", None), ("none", None)],
)
def test_a_typed_budget_is_whole_credits_or_none(text, expected):
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text", ["0", "-5", "2.5", "abc", "1e3"])
def test_a_typed_budget_that_is_not_one_is_refused_on_its_field(text):
    with pytest.raises(FieldError) as refused:
        parse_budget(text)
    assert refused.value.field == "budget" and "not a budget" in str(refused.value)
