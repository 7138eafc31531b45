"""The journal's one gate: every change of a balance is a `Posting` passed to `post`.

A posting is one journal entry and its transfers (TigerBeetle's `create_transfers`,
Formance's `CreateTransaction`): the gate appends them and moves the cached plan and
wallet balances with them, guarded so that neither can go below zero, and records the
agent's and the account's month spend when the entry charged or refunded an agent, and
adds usage to the usage rollup (ledger/journal/_rollup.py). Charges, refunds, renewals and
expiry, top-ups and adjustments (through ledger/wallet.py) all come here.

The gate neither begins nor commits: the caller's transaction holds the account lock (taken
by `lock_account` or `read_for_charge`) and decides under it, so the guard never refuses
in practice; if it does, a writer decided on stale balances and `Overdraft` rolls the
transaction back. Several postings in one transaction apply in order, each seeing the one
before, which is what a batched writer (many charges, one commit) needs: it is the
transaction around many calls of this gate, not a second way in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ledger.journal import _rollup, _sql, batch
from ledger.journal._driver import connection
from ledger.journal._rollup import UsageKey
from ledger.models import Account, Agent
from ledger.tracing import current_request_id

#: The books whose balance is cached on the account row (and may never go negative).
CACHED = {"plan": "plan_balance", "wallet": "wallet_balance"}

Move = tuple[str, str, int]  # (debit book, credit book, milli-credits)


class Overdraft(RuntimeError):
    """The gate refused a posting that would take a cached balance below zero.

    Not an answer to a request: writers decide under the account lock, so this means one
    did not, and the transaction must roll back.
    """


class KeyTaken(Exception):
    """A held account's charge found its idempotency key taken when writing its entry
    (ledger/journal/batch.py): nothing was written; the charge replays the first answer."""


class Posting(NamedTuple):
    """One journal entry and its transfers, as the gate writes them."""

    account_id: int
    kind: str
    moves: Sequence[Move]
    created_at: datetime
    agent_id: int | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    unit: str | None = None
    quantity: int | None = None
    #: The entry's amount; by default what its transfers move.
    amount: int | None = None
    refused_reason: str | None = None
    call_id: str | None = None
    refund_of: int | None = None
    memo: str | None = None
    #: The agent's (month, month spend) once this entry is posted, or None to leave it.
    spend: tuple[str, int] | None = None
    #: The account's (month, month spend) once this entry is posted (what its budget
    #: counts), or None to leave it. Recorded only by a posting that moves a balance.
    account_spend: tuple[str, int] | None = None
    #: The usage rollup row this posting counts in (a charge, or the refund of one): the
    #: local day of the charge and its unit. None: not usage.
    usage: UsageKey | None = None


class Posted(NamedTuple):
    #: None: a charge of a writer's batch whose entry is written at the batch's end; the
    #: caller hands its answer to `answer_later`, which sets the id then.
    entry_id: int | None
    #: The cached balances after the posting, or None when it moved neither.
    plan_balance: int | None
    wallet_balance: int | None


def post(session: Session, posting: Posting) -> Posted:
    """Append the posting's entry and transfers and move the cached balances with them.

    Moves of zero are left out. Raises `Overdraft` (and writes nothing) when a cached
    balance would go below zero.
    """
    session.flush()  # rows the entry refers to (a call just opened) exist first
    conn = connection(session)
    plan = wallet = total = 0
    touches = False
    moves: list[Move] = []
    for move in posting.moves:
        debit, credit, amount = move
        if amount < 0:
            raise ValueError(f"A transfer moves a positive amount, not {amount}.")
        if amount:
            moves.append(move)
            total += amount
            plan += (credit == "plan") * amount - (debit == "plan") * amount
            wallet += (credit == "wallet") * amount - (debit == "wallet") * amount
            touches = touches or debit in CACHED or credit in CACHED
    counts_as_usage = bool(moves) and posting.kind in _rollup.KINDS
    if counts_as_usage and (posting.usage is None or posting.agent_id is None):
        raise ValueError("Usage and its refunds name their agent and rollup row (UsageKey).")
    params: dict[str, Any] = {
        "account_id": posting.account_id,
        "agent_id": posting.agent_id,
        "kind": posting.kind,
        "idempotency_key": posting.idempotency_key,
        "request_hash": posting.request_hash,
        "unit": posting.unit,
        "quantity": posting.quantity,
        "amount": posting.amount or total,
        "refused_reason": posting.refused_reason,
        "call_id": posting.call_id,
        "refund_of": posting.refund_of,
        "memo": posting.memo,
        "created_at": posting.created_at,
        "request_id": current_request_id(),
        "plan": plan,
        "wallet": wallet,
    }
    if posting.spend is not None:
        if posting.agent_id is None:
            raise ValueError("A month spend is recorded for the posting's agent: name one.")
        params["month"], params["month_spend"] = posting.spend
    account_spend = posting.account_spend is not None and touches
    if account_spend:
        params["account_month"], params["account_month_spend"] = posting.account_spend
    quantity = (posting.quantity or 0) if posting.kind == "usage" else 0
    held = batch.current(conn)
    if held is not None and posting.kind == "usage" and posting.agent_id is not None:
        snapshot = held.snapshot(posting.account_id, posting.agent_id)
    else:
        snapshot = None
    if snapshot is not None:
        assert held is not None and posting.agent_id is not None
        posted = _post_held(conn, held, snapshot, posting, moves, params, touches)
        if counts_as_usage:
            assert posting.usage is not None  # checked above
            held.add_usage(
                posting.account_id, posting.agent_id, posting.usage, quantity,
                *_rollup.used(moves),
            )  # fmt: skip
            counts_as_usage = False
    elif conn.dialect.name == "postgresql":
        for n, (debit, credit, amount) in enumerate(moves):
            params[f"debit_{n}"], params[f"credit_{n}"], params[f"amount_{n}"] = (
                debit, credit, amount
            )  # fmt: skip
        if counts_as_usage:
            assert posting.usage is not None  # checked above
            upsert = _rollup.upsert_params(posting.usage, quantity, moves)
            if upsert:  # a charge: its rollup row is written by the same statement
                params.update(upsert)
                counts_as_usage = False
        statement = _sql.one_statement(
            len(moves), touches, posting.spend is not None, account_spend, "usage_day" in params
        )
        row = statement.one_or_none(conn, params)
        if row is None:
            raise Overdraft(f"Posting {posting.kind} would overdraw account {posting.account_id}.")
        posted = Posted(row[0], *row[1:]) if touches else Posted(row[0], None, None)
    else:
        balances: Sequence[int | None] = (None, None)
        if touches:
            move = _sql.MOVE_AND_ACCOUNT_SPEND if account_spend else _sql.MOVE
            row = move.one_or_none(conn, params)
            if row is None:
                raise Overdraft(
                    f"Posting {posting.kind} would overdraw account {posting.account_id}."
                )
            balances = row[1:]
        entry_id = _sql.INSERT_ENTRY.scalar(conn, params)
        for debit, credit, amount in moves:  # one or two: cheaper than executemany
            _sql.INSERT_TRANSFER.run(
                conn,
                {"entry_id": entry_id, "account_id": posting.account_id,
                 "debit_book": debit, "credit_book": credit, "amount": amount},
            )  # fmt: skip
        if posting.spend is not None:
            _sql.SPEND.rowcount(conn, params)
        posted = Posted(entry_id, *balances)
    if counts_as_usage:
        assert posting.agent_id is not None and posting.usage is not None  # checked above
        _rollup.record(conn, posting.account_id, posting.agent_id, posting.usage, quantity, moves)
    if not len(session.identity_map):
        # Nothing loaded to refresh (a writer's charges load no objects): skip the lookups.
        return posted
    if touches:
        loaded: dict[str, Any] = {
            "plan_balance": posted.plan_balance,
            "wallet_balance": posted.wallet_balance,
        }
        if account_spend:
            loaded["account_month"], loaded["account_month_spend"] = posting.account_spend
        refresh_loaded(session, Account, posting.account_id, loaded)
    if posting.spend is not None:
        refresh_loaded(
            session,
            Agent,
            posting.agent_id,
            {"month": posting.spend[0], "month_spend": posting.spend[1]},
        )
    return posted


def _post_held(
    conn: Any,
    held: batch.Batch,
    snapshot: Any,
    posting: Posting,
    moves: list[Move],
    params: dict[str, Any],
    touches: bool,
) -> Posted:
    """A charge of an account its batch holds: the entry and its transfers at the end of
    the batch with the others (PostgreSQL: when the batch found its key free; SQLite: once
    the batch has read its keys and the largest entry id), else now; the rows it moves
    once at the end of the batch (ledger/journal/batch.py).
    The guard is the same: nothing is written when a cached balance would go below zero."""
    balances = None
    if touches:
        balances = (
            snapshot.plan_balance + params["plan"],
            snapshot.wallet_balance + params["wallet"],
        )
        if balances[0] < 0 or balances[1] < 0:
            raise Overdraft(f"Posting {posting.kind} would overdraw account {posting.account_id}.")
    if conn.dialect.name == "postgresql":
        # A charge whose key the batch found free for it: its entry and transfers are
        # written with the batch's others at its end (`_sql.LATER_ENTRIES`: every move, the
        # zeros skipped); any other now, its key checked by the insert.
        later = len(posting.moves) == 2 and held.write_later(params)
        for n, (debit, credit, amount) in enumerate(posting.moves if later else moves):
            params[f"debit_{n}"], params[f"credit_{n}"], params[f"amount_{n}"] = (
                debit, credit, amount
            )  # fmt: skip
        entry_id = None if later else _sql.held_statement(len(moves)).scalar(conn, params)
        if entry_id is None and not later:
            raise KeyTaken(posting.idempotency_key)
    else:
        # SQLite: at the end too, with the id the batch gives it (`Batch.entry_later`),
        # once the batch has read the largest entry id; before that, now.
        entry_id = held.entry_later(params, moves)
        if entry_id is None:
            entry_id = _write_held_entry(conn, params, moves)
    account_spend = posting.account_spend if touches else None
    held.move(posting.account_id, posting.agent_id, balances, account_spend, posting.spend)
    return Posted(entry_id, *balances) if balances else Posted(entry_id, None, None)


def _write_held_entry(conn: Any, params: dict[str, Any], moves: list[Move]) -> int:
    """SQLite: a held charge's entry and its transfers now, unless its key is taken."""
    entry_id = _sql.INSERT_NEW_ENTRY.scalar(conn, params)
    if entry_id is None:
        raise KeyTaken(params["idempotency_key"])
    for debit, credit, amount in moves:
        _sql.INSERT_TRANSFER_HELD.run(
            conn,
            {"entry_id": entry_id, "account_id": params["account_id"],
             "debit_book": debit, "credit_book": credit, "amount": amount},
        )  # fmt: skip
    return entry_id


def refresh_loaded(session: Session, model: type, ident: Any, values: dict[str, Any]) -> None:
    """Tell an object the session already holds what a statement just wrote to its row, so
    code that reads it later in the transaction sees the database, not a stale copy."""
    loaded = session.identity_map.get((model, (ident,), None))
    if loaded is not None:
        for name, value in values.items():
            set_committed_value(loaded, name, value)
