"""Alert levels on both databases: several thresholds per kind, each once per crossing and
re-armed when it clears; "recovered" when a low balance is lifted; today's single
thresholds by default."""

from __future__ import annotations

import pytest

from ledger.accounts import configure_account, get_account
from ledger.agents import update_agent
from ledger.alert_levels import alert_levels, parse_percents, parse_wallet_levels, set_alert_levels
from ledger.audit import Actor, list_events
from ledger.charges import charge
from ledger.db import transaction
from ledger.errors import FieldError
from ledger.renewals import renew_due
from ledger.units import credits
from ledger.wallet import credit_wallet
from tests.support.factories import NOW, story
from tests.support.ledger_reads import pending_alerts


def _levels(sessions, ids, **levels):
    return transaction(
        sessions,
        lambda s: set_alert_levels(s, ids["account"], actor=Actor.slack("UADMIN"), **levels),
    )


def _messages(sessions, ids, agent, n, key, unit="message"):
    return transaction(
        sessions,
        lambda s: charge(s, ids["account"], ids[agent], unit, n, idempotency_key=key, now=NOW),
    )


def test_defaults_are_todays_single_thresholds(sessions):
    ids = story(sessions, plan=100, wallet=0)
    levels = transaction(sessions, lambda s: alert_levels(get_account(s, ids["account"])))
    assert (levels.plan, levels.wallet, levels.limit, levels.budget) == (
        (20,),
        (credits(1000),),
        (80, 100),
        (80, 100),
    )


def test_each_plan_level_fires_once_as_plan_credits_fall_past_it(sessions):
    ids = story(sessions, plan=100, wallet=0)
    _levels(sessions, ids, plan=[50, 20, 5])
    fired = []
    for n in range(96):
        _messages(sessions, ids, "a", 1, f"m{n}")
        fired = pending_alerts(sessions, "alert.plan_low")
    assert [p["plan_balance"] for p in fired] == [credits(50), credits(20), credits(5)]


def test_one_charge_past_several_levels_says_the_lowest_once(sessions):
    ids = story(sessions, plan=100, wallet=0)
    _levels(sessions, ids, plan=[50, 20, 5])
    _messages(sessions, ids, "a", 85, "big")
    assert [p["plan_balance"] for p in pending_alerts(sessions, "alert.plan_low")] == [credits(15)]


def test_wallet_levels_rearm_once_the_wallet_is_lifted_and_say_it_recovered(sessions):
    ids = story(sessions, plan=0, wallet=0)
    _levels(sessions, ids, wallet=[credits(50), credits(20)])

    def top_up(amount, key):
        transaction(
            sessions, lambda s: credit_wallet(s, ids["account"], credits(amount), key=key, now=NOW)
        )

    top_up(60, "t1")
    assert pending_alerts(sessions, "alert.wallet_recovered") == [], "it was never low"
    _messages(sessions, ids, "b", 15, "m1")  # 45 left: under 50
    _messages(sessions, ids, "b", 30, "m2")  # 15 left: under 20
    assert [p["threshold"] for p in pending_alerts(sessions, "alert.wallet_low")] == [
        credits(50),
        credits(20),
    ]
    top_up(10, "t2")  # 25: above 20, still under 50: not recovered
    assert pending_alerts(sessions, "alert.wallet_recovered") == []
    top_up(30, "t3")  # 55: above every level
    assert pending_alerts(sessions, "alert.wallet_recovered") == [{"wallet_balance": credits(55)}]
    _messages(sessions, ids, "b", 10, "m3")  # 45: under 50 again, the level re-armed
    assert len(pending_alerts(sessions, "alert.wallet_low")) == 3
    top_up(5, "t4")  # 50 exactly: "below 50" cleared
    assert len(pending_alerts(sessions, "alert.wallet_recovered")) == 2


def test_plan_credits_recover_by_refund_aloud_and_by_renewal_quietly(sessions):
    ids = story(sessions, plan=100, wallet=0)
    _messages(sessions, ids, "a", 85, "m1")
    assert len(pending_alerts(sessions, "alert.plan_low")) == 1
    due = transaction(sessions, lambda s: get_account(s, ids["account"]).next_renewal_at)
    transaction(sessions, lambda s: renew_due(s, ids["account"], now=due))
    assert pending_alerts(sessions, "alert.plan_recovered") == [], "the renewal alert says it"
    assert not transaction(sessions, lambda s: get_account(s, ids["account"]).plan_low_alerted)


def test_agent_limit_levels_keep_their_kinds_and_add_others(sessions):
    ids = story(sessions, plan=1000, wallet=0)
    transaction(
        sessions, lambda s: update_agent(s, ids["account"], ids["a"], monthly_limit=credits(100))
    )
    _levels(sessions, ids, limit=[50, 80, 100])
    for n in range(10):
        _messages(sessions, ids, "a", 10, f"m{n}")
    assert [p["level"] for p in pending_alerts(sessions, "alert.limit_level")] == [50]
    assert len(pending_alerts(sessions, "alert.limit_80")) == 1
    assert len(pending_alerts(sessions, "alert.limit_100")) == 1


def test_no_levels_means_no_alerts_of_that_kind(sessions):
    ids = story(sessions, plan=100, wallet=0)
    _levels(sessions, ids, plan=[])
    _messages(sessions, ids, "a", 90, "m1")
    assert pending_alerts(sessions, "alert.plan_low") == []
    account = transaction(sessions, lambda s: get_account(s, ids["account"]))
    assert account.plan_low_percent == 0, "the single threshold says none too"


def test_single_threshold_settings_still_set_one_level_and_are_audited(sessions):
    ids = story(sessions, plan=100, wallet=0)
    transaction(
        sessions,
        lambda s: configure_account(
            s, ids["account"], plan_low_percent=30, wallet_low_credits=credits(5),
            actor=Actor.cli("ops"),
        ),
    )  # fmt: skip
    levels = transaction(sessions, lambda s: alert_levels(get_account(s, ids["account"])))
    assert (levels.plan, levels.wallet) == ((30,), (credits(5),))
    (event,) = [
        e for e in transaction(sessions, lambda s: list_events(s, ids["account"]))
        if e.action == "alert_levels"
    ]  # fmt: skip
    assert event.before["plan"] == [20] and event.after["plan"] == [30]
    assert (event.actor_kind, event.source) == ("cli_operator", "cli")


@pytest.mark.parametrize(
    "text, expected",
    [("50, 20, 5", (50, 20, 5)), ("5%,50%", (50, 5)), ("", ()), ("20,20", (20,))],
)
def test_typed_percent_levels(text, expected):
    assert parse_percents(text, "plan") == expected


@pytest.mark.parametrize("text", ["0", "101", "abc", "2.5", "1,2,3,4,5,6", "²"])
def test_typed_percent_levels_that_are_not_refused_on_their_field(text):
    with pytest.raises(FieldError) as refused:
        parse_percents(text, "budget")
    assert refused.value.field == "budget"


def test_typed_wallet_levels_use_the_credits_parser():
    assert parse_wallet_levels("1,000; 200") == (credits(1000), credits(200))
    assert parse_wallet_levels("1,000, 200 50") == (credits(1000), credits(200), credits(50))
    with pytest.raises(FieldError) as refused:
        parse_wallet_levels("lots")
    assert refused.value.field == "wallet" and "not a number of credits" in str(refused.value)
