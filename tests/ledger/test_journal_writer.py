"""The journal's writer: many requests in one transaction and one commit, each answered as
if it had run alone, in arrival order, on SQLite and PostgreSQL.

Batches are made deterministic by holding the writer in a first request until the others
have queued behind it (no sleeps, no timed assertions)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import event, select

from ledger.accounts import balance
from ledger.charges import Charge, charge
from ledger.db import make_engine, make_session_factory, transaction
from ledger.errors import UnknownAgent
from ledger.journal.writer import JournalWriter, Request
from ledger.models import Entry
from ledger.units import credits
from ledger.verify import verify
from tests.support.factories import NOW, story
from tests.support.writer_batches import Held


def commits_of(engine) -> list[int]:
    """A list that grows by one at every commit on `engine`."""
    commits: list[int] = []
    event.listen(engine, "commit", lambda conn: commits.append(1))
    return commits


def message(ids, agent, key, quantity=1) -> Request:
    return Request(
        charge,
        (ids["account"], agent, "message", quantity),
        {"idempotency_key": key, "now": NOW},
        savepoint=False,
        order=ids["account"],
    )


def submit_together(writer: JournalWriter, requests: list[Request]) -> list[object]:
    """Submit every request at once, in list order, from one event loop; each one's result
    or exception."""

    async def go():
        return await asyncio.gather(*(writer.run(r) for r in requests), return_exceptions=True)

    return asyncio.run(go())


def in_one_batch(writer: JournalWriter, requests: list[Request]) -> list[object]:
    """`submit_together` while the writer is held, so that all of them form one batch."""
    held = Held(writer)
    done: list[object] = []
    thread = threading.Thread(target=lambda: done.extend(submit_together(writer, requests)))
    thread.start()
    held.until_queued(len(requests))
    thread.join(30)
    return done


@pytest.fixture
def writer(engine):
    writer = JournalWriter(engine, stripes=1)
    yield writer
    writer.close()


def test_concurrent_charges_share_commits_and_a_bad_one_is_refused_alone(engine, sessions, writer):
    ids = story(sessions, plan=1000, wallet=0)
    commits = commits_of(engine)
    works = [message(ids, ids["a"], f"g{n}") for n in range(31)]
    works.append(message({"account": ids["account"]}, 999_999, "g99"))
    done = in_one_batch(writer, works)

    assert isinstance(done[-1], UnknownAgent)
    assert all(isinstance(o, Charge) and o.allowed for o in done[:-1])
    assert len(commits) < 32, "the charges shared a commit"
    view = transaction(sessions, lambda s: balance(s, ids["account"], now=NOW))
    assert view.plan_balance == credits(1000 - 31)
    assert transaction(sessions, verify) == []


def test_an_unexpected_error_rolls_the_batch_back_and_the_others_still_get_their_charge(
    sessions, writer
):
    ids = story(sessions, plan=1000, wallet=0)

    def broken(s):
        charge(s, ids["account"], ids["a"], "message", 5, idempotency_key="broken", now=NOW)
        raise RuntimeError("a bug after writing")

    works = [message(ids, ids["a"], f"u{n}") for n in range(10)]
    works.insert(5, Request(broken, savepoint=False, order=ids["account"]))
    done = in_one_batch(writer, works)

    assert isinstance(done[5], RuntimeError)
    assert all(isinstance(o, Charge) and o.allowed for n, o in enumerate(done) if n != 5)
    # The broken request's charge was rolled back with it; each good one was charged once.
    view = transaction(sessions, lambda s: balance(s, ids["account"], now=NOW))
    assert view.plan_balance == credits(990)
    assert transaction(sessions, verify) == []


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_bug_after_the_commit_went_with_the_writes_charges_nobody_twice(
    sessions, writer, monkeypatch
):
    """PostgreSQL sends a batch's COMMIT in the round trip of its last writes. A bug once
    that COMMIT has run must not run the batch again (each charge would be taken twice):
    every request gets the error, and what the batch wrote stands, once."""
    import ledger.journal._pg_writes as pg_writes

    ids = story(sessions, plan=1000, wallet=0)

    def bug(cursor, answers):
        raise RuntimeError("a bug after the commit")

    monkeypatch.setattr(pg_writes, "_answer", bug)
    works = [message(ids, ids["a"], f"c{n}") for n in range(5)]
    done = in_one_batch(writer, works)
    monkeypatch.undo()

    assert all(isinstance(o, RuntimeError) for o in done[1:]), done
    keys = transaction(sessions, lambda s: list(s.execute(select(Entry.idempotency_key)).scalars()))
    assert sorted(k for k in keys if k and k.startswith("c")) == [f"c{n}" for n in range(5)]
    view = transaction(sessions, lambda s: balance(s, ids["account"], now=NOW))
    assert view.plan_balance == credits(995)
    assert transaction(sessions, verify) == []
    # The writer goes on: its next batch begins and commits as ever.
    done = in_one_batch(writer, [message(ids, ids["a"], f"d{n}") for n in range(3)])
    assert all(isinstance(o, Charge) and o.allowed for o in done)
    view = transaction(sessions, lambda s: balance(s, ids["account"], now=NOW))
    assert view.plan_balance == credits(992)


def test_batches_in_a_row_each_commit_on_their_own(engine, sessions, writer):
    """Each batch is one transaction of its own (on PostgreSQL its BEGIN goes with its first
    statement): one that fails rolls back only itself, before and after good ones."""
    ids = story(sessions, plan=1000, wallet=0)

    def broken(s):
        charge(s, ids["account"], ids["a"], "message", 5, idempotency_key="broken", now=NOW)
        raise RuntimeError("a bug after writing")

    first = in_one_batch(writer, [message(ids, ids["a"], f"e{n}") for n in range(3)])
    works = [message(ids, ids["a"], f"f{n}") for n in range(3)]
    works.insert(1, Request(broken, savepoint=False, order=ids["account"]))
    second = in_one_batch(writer, works)
    third = in_one_batch(writer, [message(ids, ids["a"], f"g{n}") for n in range(3)])

    assert all(isinstance(o, Charge) and o.allowed for o in first + third)
    assert isinstance(second[1], RuntimeError)
    view = transaction(sessions, lambda s: balance(s, ids["account"], now=NOW))
    assert view.plan_balance == credits(991)
    assert transaction(sessions, verify) == []


def test_an_error_after_writing_takes_back_only_that_request(sessions, writer):
    """A service that may raise after writing runs in a savepoint: its error is its
    answer, what it wrote is gone, and the batch around it commits."""
    ids = story(sessions, plan=1000, wallet=0)

    def refused_late(s):
        charge(s, ids["account"], ids["a"], "message", 5, idempotency_key="late", now=NOW)
        raise UnknownAgent("refused after writing")

    works = [message(ids, ids["a"], f"s{n}") for n in range(4)]
    works.insert(2, Request(refused_late, order=ids["account"]))
    done = in_one_batch(writer, works)

    assert isinstance(done[2], UnknownAgent)
    view = transaction(sessions, lambda s: balance(s, ids["account"], now=NOW))
    assert view.plan_balance == credits(996)
    keys = transaction(sessions, lambda s: set(s.execute(select(Entry.idempotency_key)).scalars()))
    assert "late" not in keys and {"s0", "s1", "s2", "s3"} <= keys
    assert transaction(sessions, verify) == []


def test_a_batch_that_begins_with_a_savepoint_is_one_transaction(engine, sessions):
    """A batch whose first request runs in a savepoint: the savepoint is the batch's first
    statement (on PostgreSQL its BEGIN goes before it), the request's refusal takes back
    only what it wrote, and the charges after it commit with the batch, in one
    transaction."""
    sizes: list[int] = []
    writer = JournalWriter(engine, stripes=1, on_batch=sizes.append)
    ids = story(sessions, plan=1000, wallet=0)

    def refused_late(s):
        charge(s, ids["account"], ids["a"], "message", 5, idempotency_key="late", now=NOW)
        raise UnknownAgent("refused after writing")

    works = [Request(refused_late, order=ids["account"])]
    works += [message(ids, ids["a"], f"t{n}") for n in range(3)]
    done = in_one_batch(writer, works)
    writer.close()

    assert sizes == [1, 4], "the held request, then the four together"
    assert isinstance(done[0], UnknownAgent)
    assert all(isinstance(o, Charge) and o.allowed for o in done[1:])
    view = transaction(sessions, lambda s: balance(s, ids["account"], now=NOW))
    assert view.plan_balance == credits(997)
    keys = transaction(sessions, lambda s: set(s.execute(select(Entry.idempotency_key)).scalars()))
    assert "late" not in keys and {"t0", "t1", "t2"} <= keys
    assert transaction(sessions, verify) == []


def test_a_charge_timed_without_a_zone_is_refused_and_the_batch_goes_on(sessions, writer):
    """Every time the journal stores is UTC with its zone: a charge given a naive time is
    refused with the column's own error, on both databases (on PostgreSQL a batch's entries
    go out as JSON, checked the same), and the charges around it are charged once."""
    ids = story(sessions, plan=1000, wallet=0)
    works = [message(ids, ids["a"], f"z{n}") for n in range(3)]
    works[1].kwargs["now"] = NOW.replace(tzinfo=None)
    done = in_one_batch(writer, works)

    assert isinstance(done[1], ValueError), done[1]
    assert all(isinstance(o, Charge) and o.allowed for n, o in enumerate(done) if n != 1)
    keys = transaction(sessions, lambda s: set(s.execute(select(Entry.idempotency_key)).scalars()))
    assert {"z0", "z2"} <= keys and "z1" not in keys
    view = transaction(sessions, lambda s: balance(s, ids["account"], now=NOW))
    assert view.plan_balance == credits(998)


def test_each_request_of_a_batch_writes_with_its_own_request_id(engine, sessions):
    """Requests sharing one transaction each write their journal entry and outbox rows with
    the request id they were queued with, also when the batch is rolled back and run again
    request by request; `on_batch` hears the size of each transaction committed."""
    from ledger.models import OutboxMessage
    from ledger.tracing import request_scope

    sizes: list[int] = []
    writer = JournalWriter(engine, stripes=1, on_batch=sizes.append)
    ids = story(sessions, plan=1000, wallet=0)

    def queued(request_id: str, key: str, quantity: int = 1) -> Request:
        with request_scope(request_id):
            return message(ids, ids["a"], key, quantity)

    # The 900-credit charge crosses the plan's low level wherever it comes in the batch.
    works = [queued(f"rid-{n}", f"r{n}") for n in range(6)]
    works.insert(2, queued("rid-big", "big", 900))
    done = in_one_batch(writer, works)
    assert all(isinstance(o, Charge) and o.allowed for o in done)
    assert sizes == [1, 7], "the held request, then the seven together"

    def broken(s):
        charge(s, ids["account"], ids["a"], "message", 5, idempotency_key="broken", now=NOW)
        raise RuntimeError("a bug after writing")

    works = [queued(f"rid-{n}", f"r{n}") for n in range(6, 10)]
    with request_scope("rid-broken"):
        works.insert(1, Request(broken, savepoint=False, order=ids["account"]))
    done = in_one_batch(writer, works)
    writer.close()
    assert isinstance(done[1], RuntimeError)
    assert sizes == [1, 7, 1, 1, 1, 1, 1], "rolled back, then each good one alone"

    def stored(s):
        entries = dict(s.execute(select(Entry.idempotency_key, Entry.request_id)).all())
        alerts = s.execute(select(OutboxMessage.kind, OutboxMessage.request_id)).all()
        return entries, alerts

    entries, alerts = transaction(sessions, stored)
    expected = {f"r{n}": f"rid-{n}" for n in range(10)} | {"big": "rid-big"}
    assert {k: v for k, v in entries.items() if k in expected} == expected
    assert "broken" not in entries
    assert alerts and all(rid == "rid-big" for _, rid in alerts)


def test_requests_are_served_in_arrival_order(writer):
    order: list[int] = []
    held = Held(writer)
    works = [Request(lambda s, n=n: order.append(n)) for n in range(8)]
    thread = threading.Thread(target=submit_together, args=(writer, works))
    thread.start()
    held.until_queued(len(works))
    thread.join(30)
    assert order == list(range(8))


def test_a_writer_left_idle_lets_go_of_its_connection_and_takes_one_again(engine):
    writer = JournalWriter(engine, idle=0.01)
    assert writer.call(Request(lambda s: 1)) == 1
    while engine.pool.checkedout():
        threading.Event().wait(0.005)
    assert writer.call(Request(lambda s: 2)) == 2
    writer.close()


# Racing for the last credits: the batched writer against one transaction per charge.

CLIENTS = 32
PER_CLIENT = 4


def _race_requests(ids) -> dict[str, tuple[int, int]]:
    """Each client's charges: (agent, quantity) by idempotency key. Agent A stops when plan
    credits run out; agent B goes on with the wallet."""
    plan = {}
    for c in range(CLIENTS):
        for n in range(PER_CLIENT):
            agent = ids["a"] if (c + n) % 3 else ids["b"]
            plan[f"race-{c}-{n}"] = (agent, 1 + (c * 7 + n) % 3)
    return plan


def _answer(result: Charge) -> tuple:
    return (
        result.allowed,
        result.reason,
        result.amount,
        result.from_plan,
        result.from_wallet,
        result.plan_balance,
        result.wallet_balance,
        result.agent_status,
    )


def test_the_batched_writer_refuses_exactly_what_one_at_a_time_refuses(db_url, request):
    """32 clients race through the writer for the last credits; the same charges, replayed
    one transaction each in the order the writer served them, give every client the same
    answer, and both journals end the same."""
    batched_engine = make_engine(db_url)
    sessions = make_session_factory(batched_engine)
    ids = story(sessions, plan=60, wallet=30)
    plan = _race_requests(ids)
    commits = commits_of(batched_engine)
    writer = JournalWriter(batched_engine, stripes=1)
    answers: dict[str, tuple] = {}
    lock = threading.Lock()

    def client(c: int) -> None:
        for n in range(PER_CLIENT):
            key = f"race-{c}-{n}"
            agent, quantity = plan[key]
            result = writer.call(message(ids, agent, key, quantity))
            with lock:
                answers[key] = _answer(result)

    held = Held(writer)
    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    held.until_queued(CLIENTS)
    for t in threads:
        t.join(60)
    writer.close()
    assert len(answers) == CLIENTS * PER_CLIENT
    assert len(commits) < CLIENTS * PER_CLIENT, "charges shared commits"
    served = transaction(
        sessions,
        lambda s: list(
            s.execute(
                select(Entry.idempotency_key)
                .where(Entry.idempotency_key.like("race-%"))
                .order_by(Entry.id)
            ).scalars()
        ),
    )
    assert sorted(served) == sorted(plan)
    after_batches = transaction(sessions, lambda s: balance(s, ids["account"], now=NOW))
    assert transaction(sessions, verify) == []
    batched_engine.dispose()

    # The same story on a fresh database, one transaction per charge, in the served order.
    if request.node.callspec.params["db_url"] == "sqlite":
        fresh_url = db_url.replace("creditbot.db", "one-at-a-time.db")
        from ledger.migrate import upgrade

        upgrade(make_engine(fresh_url))
    else:
        fresh_url = request.getfixturevalue("pg_url")
    fresh = make_session_factory(make_engine(fresh_url))
    again = story(fresh, plan=60, wallet=30)
    assert again == ids
    alone = {}
    for key in served:
        agent, quantity = plan[key]
        result = transaction(
            fresh,
            lambda s, a=agent, q=quantity, k=key: charge(
                s, ids["account"], a, "message", q, idempotency_key=k, now=NOW
            ),
        )
        alone[key] = _answer(result)
    assert alone == answers
    refused = [k for k, a in answers.items() if not a[0]]
    assert refused and len(refused) < len(answers), "the race reached the last credits"
    after_alone = transaction(fresh, lambda s: balance(s, ids["account"], now=NOW))
    assert after_alone == after_batches
    assert transaction(fresh, verify) == []


def test_sqlite_commits_reach_the_database_file_by_background_checkpoints(sqlite_url, tmp_path):
    """The writer's own commits never checkpoint (no fsync on a request's path); the
    checkpointer copies them into the database file, so the file alone holds them."""
    import shutil
    import sqlite3

    engine = make_engine(sqlite_url)
    sessions = make_session_factory(engine)
    ids = story(sessions, plan=1000, wallet=0)
    writer = JournalWriter(engine, idle=0.01)
    for n in range(20):
        writer.call(message(ids, ids["a"], f"c{n}"))
    while engine.pool.checkedout():  # idle: connection and checkpointer gone
        threading.Event().wait(0.005)
    writer.close()
    database = sqlite_url.removeprefix("sqlite:///")
    alone = tmp_path / "copy.db"
    shutil.copyfile(database, alone)  # the file without its write-ahead log
    with sqlite3.connect(alone) as copy:
        keys = {key for (key,) in copy.execute("SELECT idempotency_key FROM entries")}
    assert {f"c{n}" for n in range(20)} <= keys
    engine.dispose()
