"""The journal's gate: every balance change is an entry of balanced transfers, the cached
balances move with it and never below zero, on SQLite and PostgreSQL."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger.charges import charge
from ledger.db import transaction
from ledger.journal import Overdraft, Posting, UsageKey, lock_account, post
from ledger.models import Account, Agent, Entry, Transfer
from ledger.units import credits
from ledger.verify import verify
from tests.support.factories import NOW, story

MONTH = "2026-11"


def balances(sessions, account_id):
    return transaction(
        sessions,
        lambda s: s.execute(
            select(Account.plan_balance, Account.wallet_balance).where(Account.id == account_id)
        ).one(),
    )


def entries_with_key(session, key):
    return session.execute(
        select(func.count()).select_from(Entry).where(Entry.idempotency_key == key)
    ).scalar_one()


def test_a_posting_moves_the_cached_balances_with_its_transfers(sessions):
    ids = story(sessions, plan=100, wallet=50)
    usage = Posting(
        ids["account"], "usage", [("plan", "usage", credits(3)), ("wallet", "usage", credits(2))],
        NOW, agent_id=ids["b"], idempotency_key="u1", unit="message", quantity=5,
        spend=(MONTH, credits(5)), usage=UsageKey(NOW.date(), "message"),
    )  # fmt: skip
    posted = transaction(sessions, lambda s: post(s, usage))
    assert (posted.plan_balance, posted.wallet_balance) == (credits(97), credits(48))
    assert tuple(balances(sessions, ids["account"])) == (credits(97), credits(48))

    def read(s):
        entry = s.get(Entry, posted.entry_id)
        moved = s.execute(
            select(Transfer.debit_book, Transfer.credit_book, Transfer.amount)
            .where(Transfer.entry_id == posted.entry_id)
            .order_by(Transfer.id)
        ).all()
        return entry.amount, entry.agent_id, moved, s.get(Agent, ids["b"]).month_spend, verify(s)

    amount, agent_id, moved, spend, mismatches = transaction(sessions, read)
    assert (amount, agent_id, spend, mismatches) == (credits(5), ids["b"], credits(5), [])
    assert [tuple(m) for m in moved] == [
        ("plan", "usage", credits(3)),
        ("wallet", "usage", credits(2)),
    ]


def test_the_gate_refuses_to_overdraw_and_writes_nothing(sessions):
    ids = story(sessions, plan=10, wallet=5)

    def overdraw(s):
        lock_account(s, ids["account"])
        with pytest.raises(Overdraft):
            post(
                s,
                Posting(
                    ids["account"],
                    "adjustment",
                    [("wallet", "adjustments", credits(6))],
                    NOW,
                    idempotency_key="too-much",
                ),  # fmt: skip
            )
        return entries_with_key(s, "too-much")

    assert transaction(sessions, overdraw) == 0
    assert tuple(balances(sessions, ids["account"])) == (credits(10), credits(5))
    assert transaction(sessions, verify) == []


def test_a_renewal_may_expire_and_grant_in_one_entry(sessions):
    """The guard is on the balance after the whole entry, as the database's own check is."""
    ids = story(sessions, plan=10, wallet=0)
    renewal = Posting(
        ids["account"], "renewal", [("plan", "expired", credits(10)), ("grants", "plan", credits(30))],
        NOW, idempotency_key="renewal:test",
    )  # fmt: skip
    posted = transaction(sessions, lambda s: post(s, renewal))
    assert posted.plan_balance == credits(30)
    assert transaction(sessions, lambda s: s.get(Entry, posted.entry_id).amount) == credits(40)


def test_moves_of_zero_are_left_out_and_negative_ones_refused(sessions):
    ids = story(sessions, plan=10, wallet=0)
    refused = Posting(
        ids["account"], "usage", [("plan", "usage", 0), ("wallet", "usage", 0)], NOW,
        agent_id=ids["a"], idempotency_key="r1", unit="call_minute", quantity=1,
        amount=credits(10), refused_reason="plan_exhausted",
    )  # fmt: skip
    posted = transaction(sessions, lambda s: post(s, refused))
    assert (posted.plan_balance, posted.wallet_balance) == (None, None)
    moved = transaction(
        sessions,
        lambda s: s.execute(
            select(func.count()).where(Transfer.entry_id == posted.entry_id)
        ).scalar_one(),
    )
    assert moved == 0
    negative = Posting(ids["account"], "adjustment", [("adjustments", "wallet", -1)], NOW)
    with pytest.raises(ValueError):
        transaction(sessions, lambda s: post(s, negative))
    assert tuple(balances(sessions, ids["account"])) == (credits(10), 0)


def test_objects_the_session_holds_see_what_the_gate_wrote(sessions):
    ids = story(sessions, plan=100, wallet=0)

    def work(s):
        account = lock_account(s, ids["account"])
        agent = s.get(Agent, ids["a"])
        post(
            s,
            Posting(
                ids["account"], "usage", [("plan", "usage", credits(4))], NOW,
                agent_id=ids["a"], idempotency_key="seen", spend=(MONTH, credits(4)),
                usage=UsageKey(NOW.date(), "message"),
            ),
        )  # fmt: skip
        return account.plan_balance, agent.month_spend

    assert transaction(sessions, work) == (credits(96), credits(4))


def test_many_charges_in_one_transaction_each_see_the_one_before(sessions):
    """What a batched writer does: one transaction around many charges, through the same
    gate. Ten minutes fit in the plan; the rest are refused; nothing is overdrawn."""
    ids = story(sessions, plan=100, wallet=0)

    def batch(s):
        return [
            charge(s, ids["account"], ids["a"], "call_minute", idempotency_key=f"m{n}", now=NOW)
            for n in range(14)
        ]

    results = transaction(sessions, batch)
    assert [r.allowed for r in results] == [True] * 10 + [False] * 4
    assert [r.plan_balance for r in results[:10]] == [credits(90 - 10 * n) for n in range(10)]
    assert {r.reason for r in results[10:]} == {"plan_exhausted"}
    assert tuple(balances(sessions, ids["account"])) == (0, 0)
    assert transaction(sessions, verify) == []


LEDGER = Path(__file__).resolve().parents[2] / "ledger"
_BALANCES = {"plan_balance", "wallet_balance"}


def _writes_balances(tree: ast.AST) -> list[int]:
    """Lines that assign a cached balance or pass one to an UPDATE's `.values()`."""
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            elements = target.elts if isinstance(target, ast.Tuple) else [target]
            if any(isinstance(t, ast.Attribute) and t.attr in _BALANCES for t in elements):
                found.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "values" and any(k.arg in _BALANCES for k in node.keywords):
                found.append(node.lineno)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setattr":
            name = node.args[1] if len(node.args) > 1 else None
            if isinstance(name, ast.Constant) and name.value in _BALANCES:
                found.append(node.lineno)
    return found


def test_only_the_journal_writes_balances_and_runs_the_driver():
    """Money moves through one door: outside ledger/journal/ no module writes a cached
    balance or reaches the journal's private statements."""
    offenders = []
    for path in sorted(LEDGER.rglob("*.py")):
        relative = path.relative_to(LEDGER)
        if relative.parts[0] in ("journal", "migrations"):
            continue
        source = path.read_text()
        tree = ast.parse(source)
        offenders += [f"{relative}:{line}" for line in _writes_balances(tree)]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                if any(name.startswith("ledger.journal._") for name in names):
                    offenders.append(f"{relative}:{node.lineno} imports {node.module}")
    assert offenders == []
