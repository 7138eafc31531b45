"""The outbox: a message written twice under one dedup key is written once, and the
change it came with still commits, on both databases."""

from __future__ import annotations

from ledger import outbox
from ledger.db import transaction
from ledger.models import Account
from tests.support.factories import NOW, story


def _rename(session, account_id, name):
    session.get(Account, account_id).name = name


def test_writing_an_alert_that_exists_is_a_no_op_and_its_change_commits(sessions):
    acc = story(sessions)["account"]

    def write(session, name):
        _rename(session, acc, name)
        return outbox.add(
            session, acc, outbox.Alert.WALLET_LOW, {"n": name}, now=NOW, dedup_key="once"
        )

    written = [transaction(sessions, lambda s: write(s, "first"))]
    # The same key again, in a later transaction and twice in one: no error, no rollback.
    written.append(transaction(sessions, lambda s: write(s, "second"), retries=0))
    assert transaction(sessions, lambda s: s.get(Account, acc).name) == "second"
    written += transaction(sessions, lambda s: [write(s, "third"), write(s, "third")])
    pending = transaction(sessions, lambda s: [(m.kind, m.payload) for m in outbox.pending(s)])
    assert [p for p in pending if p[0] == outbox.Alert.WALLET_LOW] == [
        (outbox.Alert.WALLET_LOW, {"n": "first"})
    ]
    assert transaction(sessions, lambda s: s.get(Account, acc).name) == "third"
    assert written == [True, False, False, False]  # add() says whether it wrote


def test_messages_without_a_dedup_key_are_all_written(sessions):
    acc = story(sessions)["account"]
    for _ in range(2):
        transaction(sessions, lambda s: outbox.add(s, acc, outbox.RECHARGE_REQUESTED, {}, now=NOW))
    kinds = transaction(sessions, lambda s: [m.kind for m in outbox.pending(s, account_id=acc)])
    assert kinds.count(outbox.RECHARGE_REQUESTED) == 2
