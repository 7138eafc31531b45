"""`ledger verify` and statements read the journal in chunks: the answers do not depend on
the chunk size, and progress is reported up to the whole journal."""

from __future__ import annotations

from sqlalchemy import update

import ledger.statement
import ledger.verify
from ledger.charges import charge, refund
from ledger.db import transaction
from ledger.models import Account
from ledger.statement import lines
from ledger.verify import verify
from ledger.wallet import credit_wallet
from tests.support.factories import NOW, story


def busy_account(sessions):
    ids = story(sessions, plan=100, wallet=20)

    def work(s):
        for n in range(12):
            agent = ids["a"] if n % 2 else ids["b"]
            done = charge(s, ids["account"], agent, "message", 1 + n % 3, idempotency_key=f"m{n}",
                          now=NOW)  # fmt: skip
            if n % 5 == 0:
                refund(s, ids["account"], done.entry_id, 500, key=f"r{n}", now=NOW)
        credit_wallet(s, ids["account"], 7000, key="t1", kind="adjustment", now=NOW)

    transaction(sessions, work)
    return ids


def test_statement_pages_change_nothing_and_report_progress(sessions, monkeypatch):
    ids = busy_account(sessions)
    whole = transaction(sessions, lambda s: list(lines(s, ids["account"])))
    assert len(whole) > 10
    seen = []
    monkeypatch.setattr(ledger.statement, "PAGE", 3)
    paged = transaction(
        sessions, lambda s: list(lines(s, ids["account"], progress=lambda *p: seen.append(p)))
    )
    assert paged == whole
    assert seen[-1] == (len(whole), len(whole))
    last = whole[-1]
    balances = transaction(
        sessions,
        lambda s: s.get(Account, ids["account"]),
    )
    assert (last.plan_balance, last.wallet_balance) == (
        balances.plan_balance,
        balances.wallet_balance,
    )


def test_verify_in_small_chunks_finds_the_same(sessions, monkeypatch):
    ids = busy_account(sessions)
    other = story(sessions, plan=50, wallet=5, team="T0002")
    monkeypatch.setattr(ledger.verify, "CHUNK", 4)
    seen = []
    assert transaction(sessions, lambda s: verify(s, progress=lambda *p: seen.append(p))) == []
    assert seen and seen[-1][0] == seen[-1][1]
    transaction(
        sessions,
        lambda s: s.execute(
            update(Account).where(Account.id == other["account"]).values(wallet_balance=1)
        ),
    )
    found = transaction(sessions, verify)
    assert [(m.account_id, m.book) for m in found] == [(other["account"], "wallet")]
    assert transaction(sessions, lambda s: verify(s, ids["account"])) == []
