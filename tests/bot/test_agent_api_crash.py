"""Crash test: a real `creditbot serve` charging under load is killed with SIGKILL and
restarted; the client retries every unanswered request with the same Idempotency-Key.
Afterwards nothing is lost, nothing is charged twice, and `creditbot ledger verify` passes."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from sqlalchemy import func, select

from ledger.api_keys import create_key
from ledger.db import make_engine, make_session_factory, transaction
from ledger.models import Account, Entry
from ledger.units import credits
from tests.support.api_server import Server, creditbot
from tests.support.factories import story

CLIENTS = 6
REQUESTS = 300  # keys in all; the kill lands while they are in flight


def quantity_of(i: int) -> int:
    return 1 + i % 3  # different sizes, so a double charge cannot hide in the total


def _send(client: httpx.Client, agent: int, i: int, timeout: float = 10) -> httpx.Response:
    return client.post(
        "/v1/messages",
        json={"agent_id": agent, "quantity": quantity_of(i), "direction": "outbound"},
        headers={"Idempotency-Key": f"crash-{i}"},
        timeout=timeout,
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sigkill_under_load_loses_nothing_and_charges_nothing_twice(request, backend, tmp_path):
    url = (
        request.getfixturevalue("sqlite_url")
        if backend == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    ids = story(sessions, plan=100_000, wallet=0)
    secret = transaction(sessions, lambda s: create_key(s, ids["account"], "crash")).secret
    plan_before = credits(100_000)
    auth = {"Authorization": f"Bearer {secret}"}

    answers: dict[int, dict] = {}
    lock = threading.Lock()
    todo = list(range(REQUESTS))

    def worker(mine: list[int], base_url: str, unanswered: list[int], impatient: bool) -> None:
        with httpx.Client(base_url=base_url, headers=auth, timeout=10) as client:
            for n, i in enumerate(mine):
                try:
                    # Some requests give up before the answer comes (as a client with a
                    # short timeout does): charged or not, the client cannot tell.
                    r = _send(
                        client, ids["a"], i, timeout=0.002 if impatient and i % 10 == 0 else 10
                    )
                except httpx.TimeoutException:
                    with lock:
                        unanswered.append(i)
                    continue
                except httpx.HTTPError:
                    # No answer: we cannot know whether it was charged. Retry it (and the
                    # keys this client did not get to) with the same key after the restart.
                    with lock:
                        unanswered.extend(mine[n:])
                    return
                assert r.status_code == 200, r.text
                with lock:
                    answers[i] = r.json()

    # Rounds of load: the server is SIGKILLed while requests are in flight, twice, then
    # the last round retries whatever is still unanswered on a server left running.
    pending, kills, replayed = todo, [], 0
    for round_ in range(3):
        unanswered: list[int] = []
        before = len(answers)
        server = Server(url).start()
        try:
            threads = [
                threading.Thread(
                    target=worker,
                    args=(pending[c::CLIENTS], server.url, unanswered, round_ < 2),
                )
                for c in range(CLIENTS)
            ]
            for t in threads:
                t.start()
            if round_ < 2:
                target = before + len(pending) // 4
                deadline = time.monotonic() + 20
                while len(answers) < target and time.monotonic() < deadline:
                    time.sleep(0.002)
                server.kill()
            for t in threads:
                t.join(timeout=60)
            if round_ == 2:
                # A retry of a request that did answer changes nothing either.
                with httpx.Client(base_url=server.url, headers=auth, timeout=10) as client:
                    for i in todo[:20]:
                        r = _send(client, ids["a"], i)
                        assert r.json()["replayed"] is True
                        assert r.json()["amount_millicredits"] == answers[i]["amount_millicredits"]
        finally:
            server.kill()
        assert sorted(unanswered + [i for i in pending if i in answers]) == sorted(pending)
        if round_:
            replayed += sum(answers[i]["replayed"] for i in pending if i in answers)
        if round_ < 2:
            kills.append(len(answers) - before)
            assert unanswered, "the kill must land while requests are in flight"
        pending = unanswered
    assert pending == []
    assert replayed > 0, "some retried requests had been charged before their answer was lost"

    # Every key charged exactly once, for exactly its price; the journal is consistent.
    assert sorted(answers) == todo
    expected = sum(credits(quantity_of(i)) for i in todo)
    assert sum(a["amount_millicredits"] for a in answers.values()) == expected

    def read(s):
        entries = s.execute(
            select(func.count(), func.sum(Entry.amount)).where(
                Entry.account_id == ids["account"],
                Entry.kind == "usage",
                Entry.idempotency_key.like("msg:crash-%"),
            )
        ).one()
        plan = s.execute(
            select(Account.plan_balance).where(Account.id == ids["account"])
        ).scalar_one()
        return entries, plan

    (count, total), plan = transaction(sessions, read)
    assert count == REQUESTS and total == expected
    assert plan == plan_before - expected
    result = creditbot("ledger", "verify", database_url=url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ledger ok" in result.stdout
    engine.dispose()
    print(
        f"{backend}: answered before each SIGKILL {kills}; {replayed} retries had been charged "
        "before the kill and were answered as replays (some after a short client timeout, some after a kill)"
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_concurrent_charges_never_overdraw(request, backend):
    """Many clients racing for the last plan credits of a `stop` agent: exactly what the
    plan holds is allowed, the rest is refused with 402, the balance ends at zero."""
    url = (
        request.getfixturevalue("sqlite_url")
        if backend == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    ids = story(sessions, plan=50, wallet=100)
    secret = transaction(sessions, lambda s: create_key(s, ids["account"], "race")).secret
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(base_url: str, keys: range) -> None:
        with httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {secret}"}, timeout=30
        ) as client:
            for i in keys:
                r = client.post(
                    "/v1/messages",
                    json={"agent_id": ids["a"], "direction": "inbound"},
                    headers={"Idempotency-Key": f"race-{i}"},
                )
                with lock:
                    statuses.append(r.status_code)

    with Server(url) as server:
        threads = [
            threading.Thread(target=worker, args=(server.url, range(n, 80, 8))) for n in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        balance = httpx.get(
            server.url + "/v1/balance", headers={"Authorization": f"Bearer {secret}"}
        ).json()
    assert sorted(set(statuses)) == [200, 402]
    assert statuses.count(200) == 50 and statuses.count(402) == 30
    assert balance["plan_balance_millicredits"] == 0
    # A `stop` agent never touches the wallet.
    assert balance["wallet_balance_millicredits"] == credits(100)
    result = creditbot("ledger", "verify", database_url=url)
    assert result.returncode == 0, result.stdout + result.stderr
    engine.dispose()
