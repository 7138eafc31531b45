"""Month rollover: at local midnight of the 1st (account time zone), agents stopped for
their monthly limit resume, month spend restarts, and limit alerts fire again."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from ledger.accounts import balance
from ledger.agents import get_agent, update_agent
from ledger.charges import charge
from ledger.db import transaction
from ledger.models import OutboxMessage
from ledger.renewals import renew_due
from ledger.rollover import accounts_to_roll, roll_account
from ledger.units import credits
from tests.support.factories import story

NOV = datetime(2026, 11, 10, 12, tzinfo=UTC)
#: Midnight of 1 December in Madrid (UTC+1 in winter).
DEC_MADRID = datetime(2026, 11, 30, 23, tzinfo=UTC)


def _alerts(sessions, kind):
    return transaction(
        sessions,
        lambda s: list(
            s.execute(
                select(OutboxMessage.payload)
                .where(OutboxMessage.kind == kind)
                .order_by(OutboxMessage.id)
            ).scalars()
        ),
    )


def _agent(sessions, account_id, agent_id):
    return transaction(sessions, lambda s: get_agent(s, account_id, agent_id))


def _charge(sessions, ids, agent, n, key, now):
    return transaction(
        sessions,
        lambda s: charge(s, ids["account"], ids[agent], "message", n, idempotency_key=key, now=now),
    )


def _roll(sessions, now):
    out = []
    for account_id in transaction(sessions, lambda s: accounts_to_roll(s, now=now)):
        out.append(transaction(sessions, lambda s, a=account_id: roll_account(s, a, now=now)))
    return out


def _limit(sessions, ids, agent, amount):
    transaction(
        sessions,
        lambda s: update_agent(s, ids["account"], ids[agent], monthly_limit=amount, now=NOV),
    )


def test_new_month_resumes_an_agent_stopped_by_its_limit_and_rearms_its_alerts(sessions):
    ids = story(sessions, plan=1000, now=NOV, timezone="Europe/Madrid", cycle_day=10)
    _limit(sessions, ids, "a", credits(100))
    stopped = _charge(sessions, ids, "a", 100, "nov-1", NOV)
    assert stopped.allowed and stopped.agent_status == "stopped"
    assert _agent(sessions, ids["account"], ids["a"]).stop_reason == "monthly_limit"
    assert len(_alerts(sessions, "alert.limit_80")) == 1

    # A minute before midnight in Madrid (22:59 UTC): still November there, nothing moves.
    assert _roll(sessions, datetime(2026, 11, 30, 22, 59, tzinfo=UTC)) == []
    assert _agent(sessions, ids["account"], ids["a"]).status == "stopped"

    [rollover] = _roll(sessions, DEC_MADRID)
    assert rollover.month == "2026-12"
    assert rollover.resumed == [ids["a"]]
    agent = _agent(sessions, ids["account"], ids["a"])
    assert (agent.status, agent.stop_reason, agent.month_spend) == ("active", None, 0)
    resumed = _alerts(sessions, "alert.agent_resumed")
    assert [(r["agent_id"], r["previous_reason"], r["cause"]) for r in resumed] == [
        (ids["a"], "monthly_limit", "new_month")
    ]
    view = transaction(sessions, lambda s: balance(s, ids["account"], now=DEC_MADRID))
    assert {a.name: a.month_spend for a in view.agents} == {"A": 0, "B": 0}

    # Running again (a double fire, a second leader) changes nothing more.
    assert _roll(sessions, DEC_MADRID) == []
    assert (
        transaction(sessions, lambda s: roll_account(s, ids["account"], now=DEC_MADRID)).rolled
        == []
    )
    assert len(_alerts(sessions, "alert.agent_resumed")) == 1

    # The agent works again, and its limit alerts fire again in the new month.
    later = datetime(2026, 12, 2, tzinfo=UTC)
    assert _charge(sessions, ids, "a", 80, "dec-1", later).allowed
    assert len(_alerts(sessions, "alert.limit_80")) == 2
    assert _charge(sessions, ids, "a", 20, "dec-2", later).agent_status == "stopped"
    assert len(_alerts(sessions, "alert.limit_100")) == 2


def test_a_stale_clock_never_rolls_a_month_back(sessions):
    ids = story(sessions, plan=1000, now=NOV, cycle_day=10)
    _limit(sessions, ids, "a", credits(100))
    _charge(sessions, ids, "a", 30, "nov-1", NOV)
    assert _roll(sessions, datetime(2026, 10, 31, tzinfo=UTC)) == []
    assert _agent(sessions, ids["account"], ids["a"]).month_spend == credits(30)


def test_new_month_without_plan_credits_waits_for_the_renewal_instead(sessions):
    """A `stop` agent stopped by its limit, in a new month with no plan credits left: the
    limit no longer holds it back, the empty plan does, so the next renewal resumes it."""
    ids = story(sessions, plan=100, wallet=500, now=NOV, cycle_day=10)
    _limit(sessions, ids, "a", credits(50))
    _charge(sessions, ids, "a", 50, "a-1", NOV)
    _charge(sessions, ids, "b", 50, "b-1", NOV)  # B spends the rest of the plan
    assert transaction(sessions, lambda s: balance(s, ids["account"])).plan_balance == 0

    [rollover] = _roll(sessions, datetime(2026, 12, 1, tzinfo=UTC))
    assert rollover.resumed == [] and rollover.still_stopped == [ids["a"]]
    agent = _agent(sessions, ids["account"], ids["a"])
    assert (agent.status, agent.stop_reason, agent.month_spend) == ("stopped", "plan_exhausted", 0)
    assert _alerts(sessions, "alert.agent_resumed") == []

    renewal = datetime(2026, 12, 10, tzinfo=UTC)
    transaction(sessions, lambda s: renew_due(s, ids["account"], now=renewal))
    assert _agent(sessions, ids["account"], ids["a"]).status == "active"
    assert [r["cause"] for r in _alerts(sessions, "alert.agent_resumed")] == ["renewal"]
