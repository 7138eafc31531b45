"""The usage rollup: by agent, local day, unit and source, written with every charge and
refund, always equal to the journal, and what the usage questions answer from."""

from __future__ import annotations

import os
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from ledger.accounts import AccountSettings, create_account
from ledger.agents import add_agent
from ledger.calls import continue_call, end_call, start_call
from ledger.charges import charge, refund
from ledger.db import make_engine, make_session_factory, transaction
from ledger.errors import InvalidInput
from ledger.migrate import downgrade, upgrade
from ledger.models import UsageDay
from ledger.units import credits
from ledger.usage import usage, used
from ledger.usage_check import check, rebuild
from ledger.verify import verify
from ledger.wallet import credit_wallet
from tests.support.factories import NOW, story
from tests.support.property_databases import database_factory

ZONES = ["UTC", "Asia/Kathmandu", "America/St_Johns", "Pacific/Kiritimati", "Pacific/Pago_Pago"]


def rollup(sessions, account_id):
    def read(s):
        return {
            (r.day, r.agent_id, r.unit): (r.quantity, r.from_plan, r.from_wallet)
            for r in s.execute(select(UsageDay).where(UsageDay.account_id == account_id)).scalars()
            if r.quantity or r.from_plan or r.from_wallet
        }

    return transaction(sessions, read)


def test_a_charge_counts_on_its_local_day_and_a_refund_on_the_charge_s_day(sessions):
    # 23:30 UTC on the 9th is already the 10th in Kathmandu (+5:45).
    ids = story(
        sessions, plan=15, wallet=100, timezone="Asia/Kathmandu", now=NOW - timedelta(days=2)
    )
    late = NOW.replace(day=9, hour=23, minute=30)
    paid = transaction(sessions, lambda s: charge(
        s, ids["account"], ids["b"], "call_minute", 2, idempotency_key="m", now=late))  # fmt: skip
    assert (paid.from_plan, paid.from_wallet) == (credits(15), credits(5))
    transaction(sessions, lambda s: charge(
        s, ids["account"], ids["a"], "message", 3, idempotency_key="x", now=late - timedelta(hours=6)))  # fmt: skip
    # refunded two days later: it comes off the 10th, wallet part first
    transaction(sessions, lambda s: refund(
        s, ids["account"], paid.entry_id, credits(7), key="r", now=late + timedelta(days=2)))  # fmt: skip
    # (the message of agent A was refused: the call had taken the plan credits)
    assert rollup(sessions, ids["account"]) == {
        (date(2026, 11, 10), ids["b"], "call_minute"): (2, credits(13), 0),
    }
    assert transaction(sessions, verify) == []


def test_usage_groups_by_agent_day_and_unit_over_a_range(sessions):
    ids = story(sessions, plan=1000, wallet=0, now=NOW - timedelta(days=10))
    for day, agent, unit, n in [(1, "a", "message", 3), (1, "b", "message", 2),
                                (2, "a", "call_minute", 1), (5, "a", "message", 4)]:  # fmt: skip
        transaction(sessions, lambda s, d=day, a=agent, u=unit, q=n: charge(
            s, ids["account"], ids[a], u, q, idempotency_key=f"{d}{a}{u}", now=NOW - timedelta(days=d)))  # fmt: skip
    first, last = date(2026, 11, 5), date(2026, 11, 9)

    def report(by):
        return transaction(sessions, lambda s: usage(s, ids["account"], first, last, by))

    by_agent = {(r.agent, r.messages, r.call_minutes, r.total) for r in report(["agent"])}
    assert by_agent == {("A", 7, 1, credits(17)), ("B", 2, 0, credits(2))}
    by_day = [(r.day, r.total) for r in report(["day"])]
    assert by_day == [(date(2026, 11, 5), credits(4)), (date(2026, 11, 8), credits(10)),
                      (date(2026, 11, 9), credits(5))]  # fmt: skip
    assert [(r.unit, r.total) for r in report(["unit"])] == [
        ("call_minute", credits(10)), ("message", credits(9))]  # fmt: skip
    one = report(["day", "agent", "unit"])  # any order of groups: agent, day, unit
    assert [(r.agent, r.day.day, r.unit) for r in one] == [
        ("A", 5, "message"),
        ("A", 8, "call_minute"),
        ("A", 9, "message"),
        ("B", 9, "message"),
    ]
    assert transaction(sessions, lambda s: used(s, ids["account"], first, last)) == credits(19)
    with pytest.raises(InvalidInput, match="starts"):
        transaction(sessions, lambda s: usage(s, ids["account"], last, first))
    with pytest.raises(InvalidInput, match="group by 'week'"):
        transaction(sessions, lambda s: usage(s, ids["account"], first, last, ["week"]))


def test_a_per_second_call_s_refund_comes_off_its_minutes(sessions):
    ids = story(sessions, plan=100, wallet=0, per_second=True)

    def call(s):
        started = start_call(s, ids["account"], ids["a"], idempotency_key="c", now=NOW)
        continue_call(s, ids["account"], started.call_id, 2, now=NOW + timedelta(seconds=60))
        return end_call(s, ids["account"], started.call_id, 90, now=NOW + timedelta(seconds=90))

    ended = transaction(sessions, call)
    assert ended.refunded == credits(5)
    assert rollup(sessions, ids["account"]) == {
        (NOW.date(), ids["a"], "call_minute"): (2, credits(15), 0)
    }
    assert transaction(sessions, verify) == []


def test_verify_names_a_rollup_that_drifted_and_rebuild_repairs_it(sessions):
    ids = story(sessions)
    transaction(
        sessions,
        lambda s: charge(s, ids["account"], ids["a"], "message", 2, idempotency_key="k", now=NOW),
    )
    transaction(sessions, lambda s: s.execute(delete(UsageDay)))
    [problem] = transaction(sessions, verify)
    assert str(problem) == (
        f"account {ids['account']}: usage of agent {ids['a']} on 2026-11-10 (message) is "
        "quantity 0, plan 0, wallet 0 in the rollup but quantity 2, plan 2000, wallet 0 in the journal"
    )
    assert transaction(sessions, lambda s: rebuild(s.connection())) == 1
    assert transaction(sessions, lambda s: check(s.connection())) == []


def test_the_migration_fills_the_rollup_from_the_journal(db_url):
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    ids = story(sessions, plan=10, wallet=50)
    for n in range(3):
        transaction(sessions, lambda s, n=n: charge(
            s, ids["account"], ids["b"], "call_minute", idempotency_key=f"m{n}", now=NOW + timedelta(days=n)))  # fmt: skip
    before = rollup(sessions, ids["account"])
    downgrade(engine, "0008")  # the revision before the rollup
    upgrade(engine)
    assert rollup(sessions, ids["account"]) == before != {}
    assert transaction(sessions, verify) == []
    engine.dispose()


# ------------------------------------------------------------------ property


operations = st.lists(
    st.one_of(
        st.tuples(st.just("charge"), st.sampled_from("ab"), st.sampled_from(["message", "call_minute"]),
                  st.integers(1, 4), st.integers(0, 20 * 24 * 60)),  # minutes after the start
        st.tuples(st.just("refund"), st.integers(0, 50), st.integers(1, 100)),  # charge, percent
    ),
    max_size=25,
)  # fmt: skip


def run_and_compare(url, tz, ops):
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    start = NOW - timedelta(days=21)

    def setup(s):
        acc = create_account(s, AccountSettings(name="P", timezone=tz, plan_credits=credits(60),
                                                cycle_anchor_day=1), now=start)  # fmt: skip
        a = add_agent(s, acc.id, "A", behaviour="stop", now=start)
        b = add_agent(s, acc.id, "B", behaviour="use_balance", now=start)
        credit_wallet(s, acc.id, credits(200), key="seed", kind="adjustment", now=start)
        return acc.id, {"a": a.id, "b": b.id}

    account, agents = transaction(sessions, setup)
    model: dict[tuple, list[int]] = {}
    paid = []  # (entry, key, left)
    for n, op in enumerate(ops):
        if op[0] == "charge":
            _, agent, unit, quantity, minutes = op
            at = start + timedelta(minutes=minutes)
            result = transaction(sessions, lambda s, a=agents[agent], u=unit, q=quantity, k=f"k{n}", at=at: charge(
                s, account, a, u, q, idempotency_key=k, now=at))  # fmt: skip
            if result.allowed:
                key = (at.astimezone(ZoneInfo(tz)).date(), agents[agent], unit)
                row = model.setdefault(key, [0, 0, 0])
                row[0] += quantity
                row[1] += result.from_plan
                row[2] += result.from_wallet
                paid.append([result.entry_id, key, result.amount])
        elif paid:
            _, which, percent = op
            entry = paid[which % len(paid)]
            amount = entry[2] * percent // 100
            if amount:
                back = transaction(sessions, lambda s, e=entry[0], m=amount, k=f"r{n}": refund(
                    s, account, e, m, key=k, now=NOW))  # fmt: skip
                entry[2] -= amount
                model[entry[1]][1] -= back.to_plan
                model[entry[1]][2] -= back.to_wallet
    expected = {k: tuple(v) for k, v in model.items() if any(v)}
    assert rollup(sessions, account) == expected
    assert transaction(sessions, verify) == []
    report = transaction(
        sessions, lambda s: usage(s, account, start.date() - timedelta(days=1), NOW.date())
    )
    assert {
        (r.day, r.agent_id, r.unit): (r.messages + r.call_minutes, r.total) for r in report
    } == {k: (v[0], v[1] + v[2]) for k, v in expected.items()}
    engine.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_the_rollup_always_equals_the_journal(database, request, tmp_path_factory):
    """Any sequence of charges (any agent, unit, time of day, time zone) and refunds: the
    rollup holds exactly what was charged, net of refunds, on the local day of each charge."""
    new_database = database_factory(database, request, tmp_path_factory)
    default = "30" if database == "sqlite" else "10"
    examples = int(os.environ.get("USAGE_PROPERTY_EXAMPLES", default))

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(tz=st.sampled_from(ZONES), ops=operations)
    def run(tz, ops):
        run_and_compare(new_database(), tz, ops)

    run()
