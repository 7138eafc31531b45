"""API keys in a writer's batch: a key this process remembers is answered from memory, and
the revocation count that says whether memory still holds is read once per batch (on
PostgreSQL in the batch's first pipeline, after the batch has begun trusting memory). A
key revoked before the batch began is refused all the same, by every request of the
batch, and nothing any of them did stays."""

from __future__ import annotations

from sqlalchemy import func, select

from ledger.api_keys import KeyCache, KeyRefused, as_key_holder, create_key, hash_secret, revoke_key
from ledger.charges import Charge, charge
from ledger.db import transaction
from ledger.journal.writer import JournalWriter, Request
from ledger.models import Entry
from tests.ledger.test_journal_writer import in_one_batch
from tests.support.factories import NOW, story


def _charges(ids: dict[str, int], keys: KeyCache, secret_hash: str, tag: str) -> list[Request]:
    return [
        Request(
            as_key_holder,
            (keys, secret_hash, charge, agent, "message", 1),
            {"idempotency_key": f"{tag}-{n}", "now": NOW},
            savepoint=False,
            order=ids["account"],
        )
        for n, agent in enumerate([ids["a"], ids["b"], ids["a"], ids["b"]])
    ]


def _entries(sessions) -> int:
    return transaction(sessions, lambda s: s.execute(select(func.count(Entry.id))).scalar_one())


def test_a_key_revoked_before_a_batch_is_refused_to_all_its_requests(engine, sessions):
    ids = story(sessions, plan=100, wallet=0)
    secret = transaction(sessions, lambda s: create_key(s, ids["account"], "runtime")).secret
    keys = KeyCache()
    secret_hash = hash_secret(secret)
    writer = JournalWriter(engine, stripes=1)
    try:
        first = in_one_batch(writer, _charges(ids, keys, secret_hash, "before"))
        assert all(isinstance(a, Charge) and a.allowed for a in first)
        assert keys.cached(secret_hash) is not None, "the key is remembered"
        before = _entries(sessions)

        # Revoked by another process: this one's memory still holds the key.
        transaction(sessions, lambda s: revoke_key(s, ids["account"], secret[:11], now=NOW))
        assert keys.cached(secret_hash) is not None

        after = in_one_batch(writer, _charges(ids, keys, secret_hash, "after"))
        assert [type(a) for a in after] == [KeyRefused] * 4
        assert _entries(sessions) == before, "nothing a refused request did stays"
        assert keys.cached(secret_hash) is None, "and the key is forgotten"
    finally:
        writer.close()


def test_a_batch_of_a_remembered_key_answers_every_request(engine, sessions):
    """The count read with the batch's first pipeline has not moved: every request is
    answered in the one batch, from memory."""
    ids = story(sessions, plan=100, wallet=0)
    secret = transaction(sessions, lambda s: create_key(s, ids["account"], "runtime")).secret
    keys = KeyCache()
    secret_hash = hash_secret(secret)
    sizes: list[int] = []
    writer = JournalWriter(engine, stripes=1, on_batch=sizes.append)
    try:
        in_one_batch(writer, _charges(ids, keys, secret_hash, "first"))
        again = in_one_batch(writer, _charges(ids, keys, secret_hash, "again"))
    finally:
        writer.close()
    assert all(isinstance(a, Charge) and a.allowed and not a.replayed for a in again)
    # Each batch: the writer held by the test, then the four requests in one transaction.
    assert sizes == [1, 4, 1, 4]
