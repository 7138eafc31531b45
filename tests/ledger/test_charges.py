"""Charges and refunds as a runtime meets them: bad requests, replays, conflicts, refunds
(rule 4 and rule 12), on SQLite and PostgreSQL. The rules a charge decides by are in
test_policy.py; the customer story in test_story.py."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ledger import outbox
from ledger.charges import MAX_QUANTITY, charge, refund
from ledger.db import transaction
from ledger.errors import IdempotencyConflict, InvalidInput, UnknownAgent
from ledger.models import Entry
from ledger.units import credits
from ledger.verify import verify
from ledger.wallet import credit_wallet
from tests.support.factories import NOW, minute, story, view


def entry_count(sessions):
    return transaction(sessions, lambda s: s.execute(select(func.count(Entry.id))).scalar_one())


@pytest.mark.parametrize(
    ("unit", "quantity", "key"),
    [
        ("sms", 1, "k"),
        ("message", 0, "k"),
        ("message", MAX_QUANTITY + 1, "k"),
        ("message", True, "k"),
        ("message", 1.5, "k"),
        ("message", 1, ""),
        ("message", 1, "k" * 201),
    ],
)
def test_a_bad_request_is_refused_and_changes_nothing(sessions, unit, quantity, key):
    ids = story(sessions)
    before = entry_count(sessions)
    with pytest.raises(InvalidInput):
        transaction(
            sessions,
            lambda s: charge(s, ids["account"], ids["a"], unit, quantity, idempotency_key=key),
        )
    assert entry_count(sessions) == before
    assert view(sessions, ids).plan_balance == credits(1000)


def test_another_accounts_agent_is_unknown(sessions):
    ours = story(sessions)
    theirs = story(sessions, team="T0002")
    with pytest.raises(UnknownAgent):
        transaction(
            sessions,
            lambda s: charge(s, ours["account"], theirs["a"], "message", idempotency_key="x"),
        )
    assert view(sessions, theirs).plan_balance == credits(1000)


def test_replaying_a_key_changes_nothing(sessions):
    ids = story(sessions)
    first = minute(sessions, ids, "b", "same")
    again = minute(sessions, ids, "b", "same")
    assert (
        again.replayed and again.entry_id == first.entry_id and again.from_plan == first.from_plan
    )
    assert view(sessions, ids).plan_balance == credits(990)
    twice = [
        transaction(
            sessions, lambda s: credit_wallet(s, ids["account"], credits(20), key="pi_9", now=NOW)
        )
        for _ in range(2)
    ]
    assert twice[1].replayed and view(sessions, ids).wallet_balance == credits(520)


def test_same_key_with_another_request_is_a_conflict(sessions):
    ids = story(sessions)
    transaction(
        sessions,
        lambda s: charge(
            s, ids["account"], ids["a"], "message", 2, idempotency_key="m1", request_hash="h1"
        ),
    )
    with pytest.raises(IdempotencyConflict):
        transaction(
            sessions,
            lambda s: charge(
                s, ids["account"], ids["a"], "message", 3, idempotency_key="m1", request_hash="h2"
            ),
        )
    assert view(sessions, ids).plan_balance == credits(998)


def test_a_charge_is_stamped_with_its_time_on_every_database(sessions):
    """The charge path writes rows straight through the driver: its times must compare like
    every other time in the database (a statement's window includes its first second)."""
    ids = story(sessions)
    minute(sessions, ids, "a", "stamped", now=NOW)
    found = transaction(
        sessions,
        lambda s: s.execute(
            select(Entry.created_at).where(
                Entry.idempotency_key == "stamped", Entry.created_at >= NOW
            )
        ).scalar_one(),
    )
    assert found == NOW


def test_a_refund_goes_to_the_wallet_part_first_and_never_past_the_charge(sessions):
    ids = story(sessions, plan=5, wallet=100)
    paid = minute(sessions, ids, "b", "m1")
    assert (paid.from_plan, paid.from_wallet) == (credits(5), credits(5))

    def give_back(amount, key):
        return transaction(
            sessions,
            lambda s: refund(s, ids["account"], paid.entry_id, amount, key=key, now=NOW),
        )

    first = give_back(credits(7), "r1")
    assert (first.to_wallet, first.to_plan) == (credits(5), credits(2))
    assert give_back(credits(7), "r1").replayed
    with pytest.raises(IdempotencyConflict):
        give_back(credits(1), "r1")
    with pytest.raises(InvalidInput):
        give_back(credits(4), "r2")  # only 3 of the 10 are left to give back
    with pytest.raises(InvalidInput):
        give_back(0, "r3")
    after = view(sessions, ids)
    assert (after.plan_balance, after.wallet_balance) == (credits(2), credits(100))
    assert next(a.month_spend for a in after.agents if a.name == "B") == credits(3)
    assert transaction(sessions, verify) == []


def test_a_refund_resumes_an_agent_it_gives_credits_back_to(sessions):
    ids = story(sessions, plan=10, wallet=0)
    paid = minute(sessions, ids, "a", "m1")
    assert paid.agent_status == "stopped"
    transaction(
        sessions,
        lambda s: refund(s, ids["account"], paid.entry_id, credits(1), key="r", now=NOW),
    )
    assert minute(sessions, ids, "a", "m2").reason == "plan_exhausted", "1 credit: not a minute"
    resumed = [
        m.payload
        for m in transaction(sessions, lambda s: outbox.pending(s, account_id=ids["account"]))
        if m.kind == outbox.Alert.AGENT_RESUMED
    ]
    assert [(r["agent_name"], r["cause"]) for r in resumed] == [("A", "refund")]
