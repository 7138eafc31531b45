"""Group commit on PostgreSQL: charges waiting for one account share a transaction, and
one request's error never costs another its charge."""

from __future__ import annotations

import threading

import pytest

from bot.http.gates import GroupCommit
from ledger.accounts import balance
from ledger.charges import charge
from ledger.db import make_engine, make_session_factory, transaction
from ledger.errors import LedgerError, UnknownAgent
from ledger.units import credits
from ledger.verify import verify
from tests.support.factories import NOW, story


@pytest.fixture
def pg_sessions(pg_url):
    engine = make_engine(pg_url)
    yield make_session_factory(engine)
    engine.dispose()


def run_together(group, works):
    """Start every work at once; return each one's result or exception."""
    outcomes = [None] * len(works)
    start = threading.Barrier(len(works))

    def go(i, work):
        start.wait()
        try:
            outcomes[i] = group.transact(work)
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertions
            outcomes[i] = exc

    threads = [threading.Thread(target=go, args=(i, w)) for i, w in enumerate(works)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_concurrent_charges_share_commits_and_a_bad_one_is_refused_alone(pg_sessions):
    ids = story(pg_sessions, plan=1000, wallet=0)
    commits = []
    group = GroupCommit(pg_sessions, safe=(LedgerError,))
    real_run = group._run_batch
    group._run_batch = lambda batch: (commits.append(len(batch)), real_run(batch))[1]

    def message(n, agent):
        return lambda s: charge(
            s, ids["account"], agent, "message", 1, idempotency_key=f"g{n}", now=NOW
        )

    works = [message(n, ids["a"]) for n in range(31)] + [message(99, 999_999)]
    outcomes = run_together(group, works)

    assert isinstance(outcomes[-1], UnknownAgent)
    assert all(o.allowed for o in outcomes[:-1])
    assert sum(commits) == 32 and len(commits) < 32, "some charges shared a commit"
    view = transaction(pg_sessions, lambda s: balance(s, ids["account"], now=NOW))
    assert view.plan_balance == credits(1000 - 31)
    assert transaction(pg_sessions, verify) == []


def test_an_unexpected_error_rolls_the_batch_back_and_the_others_still_get_their_charge(
    pg_sessions,
):
    ids = story(pg_sessions, plan=1000, wallet=0)
    group = GroupCommit(pg_sessions, safe=(LedgerError,))

    def message(n):
        return lambda s: charge(
            s, ids["account"], ids["a"], "message", 1, idempotency_key=f"u{n}", now=NOW
        )

    def broken(s):
        charge(s, ids["account"], ids["a"], "message", 5, idempotency_key="broken", now=NOW)
        raise RuntimeError("a bug after writing")

    outcomes = run_together(group, [message(n) for n in range(10)] + [broken])
    assert isinstance(outcomes[-1], RuntimeError)
    assert all(o.allowed for o in outcomes[:-1])
    # The broken request's charge was rolled back with it; each good one was charged once.
    view = transaction(pg_sessions, lambda s: balance(s, ids["account"], now=NOW))
    assert view.plan_balance == credits(990)
    assert transaction(pg_sessions, verify) == []
