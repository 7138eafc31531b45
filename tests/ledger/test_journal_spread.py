"""A writer's batch of many accounts holds them all (ledger/journal/batch.py): it reads
every account and agent it charges in one statement, decides each charge from memory and
writes the rows they moved once at its end. It must answer and leave the books exactly as
one transaction per request, served in the same order, would: the same refusals when the
credits run out, stops, alerts, replays, conflicting keys, unknown agents and entry ids."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from ledger.accounts import balance
from ledger.agents import update_agent
from ledger.charges import Charge, charge
from ledger.db import make_engine, make_session_factory, transaction
from ledger.errors import IdempotencyConflict, UnknownAgent
from ledger.journal import _sql, connection
from ledger.journal.writer import JournalWriter, Request
from ledger.models import Agent, Entry, OutboxMessage, UsageDay
from ledger.units import credits
from ledger.usage import usage
from ledger.verify import verify
from tests.ledger.test_journal_writer import in_one_batch
from tests.support.factories import NOW, story
from tests.support.writer_batches import twin_url

ACCOUNTS = 6
ROUNDS = 5


def _setup(sessions) -> list[dict[str, int]]:
    """Accounts with little plan credit and wallet, so that their charges run out inside
    the batch; agent A of the first account has a monthly limit (an alert, then a stop)."""
    accounts = [
        story(sessions, plan=6 + 3 * n, wallet=4 * (n % 3), team=f"T{n:04}")
        for n in range(ACCOUNTS)
    ]
    first = accounts[0]
    transaction(
        sessions,
        lambda s: update_agent(s, first["account"], first["a"], monthly_limit=credits(5), now=NOW),
    )
    return accounts


def _charge(ids: dict[str, int], agent: int, key: str, quantity: int, request_hash=None):
    return Request(
        charge,
        (ids["account"], agent, "message", quantity),
        {"idempotency_key": key, "request_hash": request_hash, "now": NOW},
        savepoint=False,
        order=ids["account"],
    )


def _round(ids: dict[str, int], n: int, r: int) -> Request:
    """Account n's charge of round r."""
    agent = ids["a"] if (n + r) % 2 else ids["b"]
    return _charge(ids, agent, f"s-{n}-{r}", 1 + (n + 2 * r) % 4, f"h-{n}-{r}")


def _requests(accounts: list[dict[str, int]]) -> list[Request]:
    """Rounds of one charge per account, accounts interleaved, with a replay, a conflicting
    key, an agent of another account and a report between them."""
    requests = []
    for r in range(ROUNDS):
        requests += [_round(ids, n, r) for n, ids in enumerate(accounts)]
        if r == 1:
            requests.append(_round(accounts[2], 2, 0))  # the same request again: replayed
            requests.append(_charge(accounts[3], accounts[3]["a"], "s-3-0", 1, "other"))
            requests.append(_charge(accounts[1], accounts[4]["b"], "s-1-x", 1))  # not its agent
        if r == 2:
            ids = accounts[4]
            report = (ids["account"], NOW.date(), NOW.date(), ("agent", "unit"))
            requests.append(Request(usage, report, savepoint=False, order=ids["account"]))
    return requests


def _served(requests: list[Request], db_url: str) -> list[int]:
    """The order the writer serves a batch in: arrival order, on PostgreSQL by account
    (stable)."""
    positions = list(range(len(requests)))
    if not db_url.startswith("sqlite"):
        positions.sort(key=lambda n: requests[n].order)
    return positions


def _state(sessions, accounts) -> tuple:
    def read(s):
        balances = [balance(s, ids["account"], now=NOW) for ids in accounts]
        agents = s.execute(
            select(
                Agent.id, Agent.status, Agent.stop_reason, Agent.month, Agent.month_spend
            ).order_by(Agent.id)
        ).all()
        rollup = s.execute(
            select(UsageDay.account_id, UsageDay.agent_id, UsageDay.unit, UsageDay.quantity,
                   UsageDay.from_plan, UsageDay.from_wallet)
            .order_by(UsageDay.account_id, UsageDay.agent_id, UsageDay.unit)
        ).all()  # fmt: skip
        journal = s.execute(
            select(Entry.id, Entry.account_id, Entry.agent_id, Entry.idempotency_key,
                   Entry.amount, Entry.refused_reason).order_by(Entry.id)
        ).all()  # fmt: skip
        alerts = s.execute(
            select(OutboxMessage.account_id, OutboxMessage.kind).order_by(OutboxMessage.id)
        ).all()
        return balances, agents, rollup, journal, alerts

    return transaction(sessions, read)


def _comparable(answer: object) -> object:
    return type(answer).__name__ if isinstance(answer, Exception) else answer


@pytest.fixture
def twin(db_url, request) -> str:
    return twin_url(db_url, request)


def test_a_batch_of_many_accounts_refuses_exactly_what_one_at_a_time_refuses(
    engine, sessions, db_url, twin
):
    accounts = _setup(sessions)
    requests = _requests(accounts)
    writer = JournalWriter(engine, stripes=1)
    batched = in_one_batch(writer, requests)
    writer.close()

    fresh = make_session_factory(make_engine(twin))
    assert _setup(fresh) == accounts
    alone: list[object] = [None] * len(requests)
    for n in _served(requests, db_url):
        try:
            alone[n] = transaction(fresh, _requests(accounts)[n])
        except Exception as exc:  # noqa: BLE001 - the request's own answer
            alone[n] = exc

    assert [_comparable(a) for a in batched] == [_comparable(a) for a in alone]
    charges = [a for a in batched if isinstance(a, Charge)]
    assert any(not c.allowed for c in charges), "the batch ran accounts out of credits"
    assert any(c.allowed and c.from_wallet for c in charges), "and into their wallets"
    assert any(c.agent_status == "stopped" for c in charges)
    assert sum(c.replayed for c in charges) == 1
    assert sum(isinstance(a, IdempotencyConflict) for a in batched) == 1
    assert sum(isinstance(a, UnknownAgent) for a in batched) == 1
    assert _state(sessions, accounts) == _state(fresh, accounts)
    assert transaction(sessions, verify) == [] and transaction(fresh, verify) == []


def _sneak_entry(session, account_id: int, agent_id: int, key: str) -> None:
    """Write a usage entry holding `key` behind the batch's back: straight on the driver,
    past the batch's hooks (nothing in the ledger writes entries so)."""
    conn = connection(session)
    statement = _sql.INSERT_ENTRY._for(conn.dialect)
    params = dict.fromkeys(_sql.ENTRY_FIELDS)
    params.update(account_id=account_id, agent_id=agent_id, kind="usage", idempotency_key=key,
                  unit="message", quantity=1, amount=0, created_at=NOW)  # fmt: skip
    cursor = conn.connection.dbapi_connection.cursor()
    cursor.execute(statement.sql, statement.parameters(params))
    cursor.close()


def test_a_key_taken_behind_the_batch_s_back_reruns_the_batch_one_at_a_time(
    engine, sessions, db_url, twin
):
    """The batch looks its keys up once, under its accounts' locks; an entry written with
    one of them anyway is found when the batch writes its entries, and the batch runs again
    one request at a time: every answer is the one it would have had alone."""
    accounts = _setup(sessions)[:2]

    def requests() -> list[Request]:
        first, second = accounts
        return [
            _charge(first, first["b"], "x-1", 1),
            Request(
                _sneak_entry,
                (second["account"], second["b"], "x-2"),
                savepoint=False,
                order=second["account"],
            ),  # fmt: skip
            _charge(second, second["b"], "x-2", 1),
        ]

    sizes: list[int] = []
    writer = JournalWriter(engine, stripes=1, on_batch=sizes.append)
    batched = in_one_batch(writer, requests())
    writer.close()
    fresh = make_session_factory(make_engine(twin))
    _setup(fresh)
    alone = [transaction(fresh, request) for request in requests()]

    # A rolled-back batch leaves a gap in the entry ids (PostgreSQL's sequence): the rest
    # of each answer is the same.
    charges = [0, 2]
    assert [replace(batched[n], entry_id=0) for n in charges] == [
        replace(alone[n], entry_id=0) for n in charges
    ]
    assert isinstance(batched[2], Charge) and batched[2].replayed
    # After the batch that held the writer: three transactions of one request (both
    # databases write a held charge's entry at the batch's end, where the taken key -- on
    # SQLite also the entry id the sneaked row took -- is found).
    assert sizes[1:] == [1, 1, 1]
    assert _state(sessions, accounts)[:3] == _state(fresh, accounts)[:3]
