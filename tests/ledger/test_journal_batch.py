"""A writer's batch holds its accounts in memory (ledger/journal/batch.py): the balances,
month spends and usage rollup its charges move are written once, at the end. Whatever else
runs in the batch -- a report on the prebuilt driver, a read through the ORM, a top-up in a
savepoint, a replayed or conflicting key -- must see, and leave, exactly what one
transaction per request would have: the same answers, balances, rollup, alerts, journal."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ledger.accounts import balance
from ledger.agents import update_agent
from ledger.charges import Charge, charge
from ledger.db import make_engine, make_session_factory, transaction
from ledger.errors import IdempotencyConflict
from ledger.journal.writer import JournalWriter, Request
from ledger.models import Agent, OutboxMessage, UsageDay
from ledger.units import credits
from ledger.usage import usage
from ledger.verify import verify
from ledger.wallet import credit_wallet
from tests.ledger.test_journal_writer import in_one_batch
from tests.support.factories import NOW, story
from tests.support.writer_batches import twin_url


def _mixed(ids: dict[str, int]) -> list[tuple[str, object]]:
    """Charges of both agents with a report, a read, a top-up, a replay and a conflicting
    key between them; agent A runs into its monthly limit (alerts, a stop)."""
    day = NOW.date()

    def charge_of(agent: str, key: str, quantity: int = 1, request_hash: str | None = None):
        return (
            "charge",
            (charge, (ids["account"], ids[agent], "message", quantity),
             {"idempotency_key": key, "request_hash": request_hash, "now": NOW}),
        )  # fmt: skip

    return [
        charge_of("a", "k1", 3, "h1"),
        charge_of("b", "k2", 2),
        ("read", (usage, (ids["account"], day, day, ("unit",)), {})),
        charge_of("a", "k3", 7),  # A at 10 of its 12: the 80% alert
        charge_of("a", "k1", 3, "h1"),  # the same request again: replayed
        charge_of("b", "k4", 5),
        ("read", (balance, (ids["account"],), {"now": NOW})),
        charge_of("a", "k1", 3, "other"),  # the same key, another request: a conflict
        ("savepoint", (credit_wallet, (ids["account"], credits(7)), {"key": "top", "now": NOW})),
        charge_of("b", "k5", 9),
        charge_of("a", "k6", 6),  # past A's limit: refused, A stops
        charge_of("a", "k7", 1),  # A is stopped: refused
        ("read", (usage, (ids["account"], day, day, ("agent", "unit")), {})),
        charge_of("b", "k8", 1),
    ]


def _requests(ids: dict[str, int]) -> list[Request]:
    requests = []
    for kind, (service, args, kwargs) in _mixed(ids):
        requests.append(
            Request(service, args, kwargs, savepoint=kind == "savepoint", order=ids["account"])
        )
    return requests


def _setup(sessions) -> dict[str, int]:
    ids = story(sessions, plan=20, wallet=10)
    transaction(
        sessions,
        lambda s: update_agent(s, ids["account"], ids["a"], monthly_limit=credits(12), now=NOW),
    )
    return ids


def _state(sessions, ids) -> tuple:
    def read(s):
        agents = s.execute(
            select(Agent.id, Agent.status, Agent.stop_reason, Agent.month, Agent.month_spend)
            .where(Agent.account_id == ids["account"])
            .order_by(Agent.id)
        ).all()
        rollup = s.execute(
            select(UsageDay.agent_id, UsageDay.unit, UsageDay.quantity, UsageDay.from_plan,
                   UsageDay.from_wallet).order_by(UsageDay.agent_id, UsageDay.unit)
        ).all()  # fmt: skip
        alerts = s.execute(select(OutboxMessage.kind).order_by(OutboxMessage.id)).scalars()
        return balance(s, ids["account"], now=NOW), agents, rollup, list(alerts)

    return transaction(sessions, read)


def _comparable(answer: object) -> object:
    if isinstance(answer, Exception):
        return type(answer).__name__
    return answer


@pytest.fixture
def fresh_url(db_url, request) -> str:
    """A second empty database of the same kind, for the one-at-a-time run."""
    return twin_url(db_url, request)


def test_a_batch_holding_its_account_answers_and_writes_as_one_at_a_time(
    engine, sessions, fresh_url
):
    ids = _setup(sessions)
    writer = JournalWriter(engine, stripes=1)
    batched = in_one_batch(writer, _requests(ids))
    writer.close()

    fresh = make_session_factory(make_engine(fresh_url))
    assert _setup(fresh) == ids
    alone = []
    for request in _requests(ids):
        try:
            alone.append(transaction(fresh, request))
        except Exception as exc:  # noqa: BLE001 - the request's own answer
            alone.append(exc)

    assert [_comparable(a) for a in batched] == [_comparable(a) for a in alone]
    assert isinstance(batched[4], Charge) and batched[4].replayed
    assert isinstance(batched[7], IdempotencyConflict)
    assert not batched[10].allowed and batched[10].agent_status == "stopped"
    # The report on the driver saw the two charges before it (A: 3, B: 2 messages).
    assert [row.messages for row in batched[2]] == [5]
    assert _state(sessions, ids) == _state(fresh, ids)
    assert transaction(sessions, verify) == [] and transaction(fresh, verify) == []
