"""A writer's batch writes its charges' entries and transfers at its end (on SQLite with the
ids the batch gives them from the largest it read, on PostgreSQL from the sequence, in
order): every answer, entry id, transfer and alert must be the one one transaction per
request would have given -- with a key taken before the batch, a key repeated inside it, a
call's minute (a key the batch did not look up ahead) and an alert written between
charges whose entries are still pending."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from ledger.agents import update_agent
from ledger.calls import CallMinute, continue_call, start_call
from ledger.charges import Charge, charge
from ledger.db import make_engine, make_session_factory, transaction
from ledger.errors import IdempotencyConflict
from ledger.journal.writer import JournalWriter, Request
from ledger.models import Entry, OutboxMessage, Transfer
from ledger.units import credits
from ledger.verify import verify
from tests.ledger.test_journal_writer import in_one_batch
from tests.support.factories import NOW, story
from tests.support.writer_batches import twin_url


def _setup(sessions) -> tuple[dict[str, int], str]:
    """An account whose agent A has a monthly limit of 12 credits, a charge made before the
    batch (key "old") and a call started before it; returns the ids and the call's id."""
    ids = story(sessions, plan=30, wallet=5)
    transaction(
        sessions,
        lambda s: update_agent(s, ids["account"], ids["a"], monthly_limit=credits(12), now=NOW),
    )
    transaction(sessions, _message(ids, "b", "old", 2))
    call = transaction(
        sessions,
        lambda s: start_call(s, ids["account"], ids["b"], idempotency_key="call", now=NOW),
    )
    return ids, call.call_id


def _message(ids: dict[str, int], agent: str, key: str, quantity: int, request_hash=None):
    return Request(
        charge,
        (ids["account"], ids[agent], "message", quantity),
        {"idempotency_key": key, "request_hash": request_hash, "now": NOW},
        savepoint=False,
        order=ids["account"],
    )


def _requests(ids: dict[str, int], call_id: str) -> list[Request]:
    minute = Request(
        continue_call, (ids["account"], call_id, 2), {"now": NOW}, order=ids["account"]
    )
    return [
        _message(ids, "a", "k1", 3, "h1"),
        _message(ids, "b", "old", 2),  # taken before the batch: replayed
        _message(ids, "b", "k2", 1),
        _message(ids, "a", "k3", 7),  # A at 10 of its 12: the 80% alert, written now
        _message(ids, "a", "k1", 3, "h1"),  # repeated inside the batch: replayed
        _message(ids, "b", "k4", 2),
        minute,  # the call's key is not the request's: looked up as it charges
        _message(ids, "a", "k1", 3, "other"),  # the same key, another request
        _message(ids, "b", "k5", 4),
        _message(ids, "a", "k6", 6),  # past A's limit: refused, A stops (an alert)
        _message(ids, "b", "k2", 1),  # replayed again, after the alerts
        _message(ids, "b", "k7", 30),  # more than is left: refused
    ]


def _journal(sessions) -> tuple:
    def read(s):
        entries = s.execute(
            select(Entry.id, Entry.account_id, Entry.agent_id, Entry.kind, Entry.idempotency_key,
                   Entry.amount, Entry.refused_reason).order_by(Entry.id)
        ).all()  # fmt: skip
        transfers = s.execute(
            select(Transfer.id, Transfer.entry_id, Transfer.debit_book, Transfer.credit_book,
                   Transfer.amount).order_by(Transfer.id)
        ).all()  # fmt: skip
        alerts = s.execute(
            select(OutboxMessage.id, OutboxMessage.kind).order_by(OutboxMessage.id)
        ).all()
        return entries, transfers, alerts

    return transaction(sessions, read)


def _comparable(answer: object) -> object:
    if isinstance(answer, Exception):
        return type(answer).__name__
    if isinstance(answer, CallMinute):
        return replace(answer, call_id="")
    return answer


def _minute_keys(journal: tuple, call_id: str) -> tuple:
    """The journal with the call's id (a uuid, one per database) left out of its keys."""
    entries, transfers, alerts = journal
    entries = [
        (*row[:4], row[4].replace(call_id, "<call>") if row[4] else row[4], *row[5:])
        for row in entries
    ]
    return entries, transfers, alerts


def test_entries_written_at_the_batch_s_end_keep_one_at_a_time_s_ids_and_answers(
    engine, sessions, db_url, request
):
    ids, call_id = _setup(sessions)
    writer = JournalWriter(engine, stripes=1)
    batched = in_one_batch(writer, _requests(ids, call_id))
    writer.close()

    fresh = make_session_factory(make_engine(twin_url(db_url, request)))
    fresh_ids, fresh_call = _setup(fresh)
    assert fresh_ids == ids
    alone: list[object] = []
    for one in _requests(ids, fresh_call):
        try:
            alone.append(transaction(fresh, one))
        except Exception as exc:  # noqa: BLE001 - the request's own answer
            alone.append(exc)

    assert [_comparable(a) for a in batched] == [_comparable(a) for a in alone]
    charges = [a for a in batched if isinstance(a, Charge)]
    assert [c.replayed for c in charges].count(True) == 3
    assert isinstance(batched[7], IdempotencyConflict)
    stopped, short = batched[9], batched[11]
    assert isinstance(stopped, Charge) and stopped.agent_status == "stopped"
    assert not stopped.allowed
    assert isinstance(short, Charge) and not short.allowed and not short.replayed
    minute = batched[6]
    assert isinstance(minute, CallMinute) and minute.charge.allowed
    # Each new charge's entry id is the next one, in the order they ran, and its transfers
    # name it: the answers carry the ids the journal holds.
    new = [c for c in charges if not c.replayed]
    assert [c.entry_id for c in new] == sorted(c.entry_id for c in new)
    batched_journal = _minute_keys(_journal(sessions), call_id)
    assert batched_journal == _minute_keys(_journal(fresh), fresh_call)
    entries, transfers, alerts = batched_journal
    assert {c.entry_id for c in new} <= {row[0] for row in entries}
    assert len(alerts) >= 2, "alerts were written between charges of the batch"
    assert transaction(sessions, verify) == [] and transaction(fresh, verify) == []
