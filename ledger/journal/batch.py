"""What a writer's batch keeps in memory across its charges, and writes once at its end.

The batch holds every account its requests name (`Request.order`) locked until it commits
(SQLite's write lock; on PostgreSQL the row locks its first charge takes for all of them,
in one statement in ascending id order), so nothing else can change them. Its first charge
reads the state of all of them and of all their agents at once (`read_ahead`); every charge
then decides on that state as the charges before it left it, from memory. Their postings
still go through the gate (`post`) one by one -- each its own entry, transfers, idempotency
key and request id, in arrival order -- but the rows a charge only moves (the account's
balances and month spend, the agent's month spend, the usage rollup) are written once per
batch: one UPDATE per account and agent, one UPSERT per rollup row (account, agent, day,
unit). A batch of charges of many accounts therefore costs what one of a single account
costs.

Equivalence: nobody can observe the rows between two charges of the batch but the batch
itself, and every statement of the batch that is not one of the charges' own (anything
through SQLAlchemy, a savepoint, a prebuilt statement such as a usage report) first writes
what is pending and forgets what is held (`flush_pending`, on the connection's
`before_cursor_execute` and in `DriverStatement.execute`), then reads the database as one
charge after another would have left it; the next charge reads again. The commit writes
what is pending first; an error there rolls the batch back like any other, and the
database's CHECKs still refuse an overdraft. A rolled-back batch takes its pending writes
with it (they were never sent).

The charges' entries and transfers are written at the end too, in their order: on SQLite
with the ids the batch gave them from the largest it read (it holds the write lock), on
PostgreSQL from the sequence, their answers given the ids then; there the COMMIT goes in
the same round trip as those writes (`Batch.flush`, ledger/journal/_driver.py). (Longer
than this project's modules usually are: what a batch holds and how it writes it out are
one state, kept in one place.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session

from ledger.journal import _pg_writes, _rollup, _sql
from ledger.journal._driver import (
    CONNECTION,
    PENDING,
    begin_now,
    begin_with,
    check_reads,
    connection,
    send_reads,
)
from ledger.policy import Snapshot


class Held:
    """One account held by the batch: each of its agents' snapshots as the batch's last
    charge left them."""

    __slots__ = ("snapshots", "complete", "moved", "spent")

    def __init__(self, complete: bool) -> None:
        self.snapshots: dict[int, Snapshot] = {}
        #: Every agent of the account is in `snapshots` (read by `read_ahead`): an agent
        #: that is not is none of the account's.
        self.complete = complete
        #: The account's balances or month spend changed since the batch read them.
        self.moved = False
        #: Agents whose month spend changed since the batch read them.
        self.spent: set[int] = set()


#: A key a charge of this batch is writing (its entry is pending: `Batch.later`).
CLAIMED = -1


class Batch:
    """The held accounts of one batch and the writes pending for them. `orders`: the
    account of each request of the batch (`Request.order`, 0 for none), in the order they
    run; `keys`: each one's idempotency key, when it names one (None)."""

    def __init__(self, orders: list[int], keys: list[str | None]) -> None:
        self.orders = orders
        self.request_keys = keys
        #: A batch of one request holds nothing: its charge's own statements write all it
        #: moves (on PostgreSQL, one), cheaper than a read ahead and writes at the end.
        self.holds = len(orders) > 1
        #: `read_ahead` ran since the batch last forgot what it held.
        self.read = False
        self.accounts: dict[int, Held] = {}
        #: The (account, idempotency key) pairs `read_ahead` looked up, each with the id
        #: of the entry holding it, None (free) or CLAIMED.
        self.keys: dict[tuple[int, str], int | None] = {}
        #: The entries of charges whose key was free, written at the end (PostgreSQL:
        #: `LATER_ENTRIES`, and the answers waiting for their ids, `answer_later`; SQLite:
        #: `INSERT_ENTRY_WITH_ID`, and their transfers' rows).
        self.later: list[dict[str, Any]] = []
        self.answers: list[Any] = []
        self.transfers: list[dict[str, Any]] = []
        #: SQLite: the id the next entry written at the end takes (the largest `read_ahead`
        #: found, plus those given since); None: the batch has not read it since it last
        #: wrote what was pending, and a charge writes its entry at once.
        self.next_entry: int | None = None
        #: PostgreSQL: one-row reads requests handed over (`read_later`), each with what
        #: checks its row, run in the batch's next pipeline.
        self.checks: list[tuple[str, Callable[[Any], None]]] = []
        #: (account, day, agent, unit) -> [quantity, from plan, from wallet]
        self.usage: dict[tuple[int, date, int, str], list[int]] = {}
        #: SQLite: the rows the pending writes changed, which no request changed itself
        #: (the writer counts each request's changes: ledger/journal/writer.py).
        self.flushed = 0

    def snapshot(self, account_id: int, agent_id: int) -> Snapshot | None:
        held = self.accounts.get(account_id)
        return None if held is None else held.snapshots.get(agent_id)

    def hold(self, account_id: int, snapshot: Snapshot) -> None:
        """Keep a snapshot just read under the account lock. (An account held for another
        agent is written out and forgotten before that read: `read_for_charge`.)"""
        held = self.accounts.get(account_id)
        if held is None:
            held = self.accounts[account_id] = Held(complete=False)
        held.snapshots[snapshot.agent_id] = snapshot

    def read_ahead(self, conn: Connection, account_id: int) -> None:
        """Read and hold, in one statement, every agent of `account_id` and of the accounts
        of the batch's requests still to run -- on PostgreSQL, whose batches run in account
        order, those from `account_id` up, so that this batch takes its row locks in
        ascending id order like every other -- once until the batch next forgets what it
        holds."""
        self.read = True
        ahead = self.orders
        postgresql = conn.dialect.name == "postgresql"
        if postgresql:
            ahead = [order for order in ahead if order >= account_id]
        ids = sorted({order for order in ahead if order} - self.accounts.keys() | {account_id})
        params = {f"account_{n}": ident for n, ident in enumerate(ids)}
        if not postgresql:
            cursor = _sql.read_accounts(len(ids)).execute(conn, params)
            rows = cursor.fetchall()
            cursor.close()
            self._read_keys(conn)
        else:
            rows = self._read_with_keys(conn, ids, params)
        accounts = self.accounts
        for row in rows:
            held = accounts.get(row[-1])
            if held is None:
                held = accounts[row[-1]] = Held(complete=True)
            held.snapshots[row[0]] = Snapshot._make(row[:-1])

    def _read_with_keys(
        self, conn: Connection, ids: list[int], params: dict[str, int]
    ) -> list[Any]:
        """PostgreSQL: the accounts' locked read and, after it (under their locks), which
        idempotency keys of the batch's requests on them are taken: one round trip. A
        charge whose key is free then writes its entry at the batch's end."""
        pairs = self._key_pairs(set(ids))
        raw = conn.connection.dbapi_connection
        with raw.pipeline():  # type: ignore[union-attr]
            begin_with(conn, raw)  # the batch's first statement: its BEGIN goes with it
            read = _sql.read_accounts(len(ids)).execute(conn, params)
            if pairs:
                found = raw.cursor()  # type: ignore[union-attr]
                # Planned for each batch, never prepared: a plan cached while the table
                # was small scans the whole table once it has grown (1.5 ms a batch at
                # 13,000 entries, measured), and it has no statistics until analyzed.
                keys = [{"account_id": a, "key": k} for a, k in pairs]
                found.execute(_sql.KEYS_TAKEN, [_sql.as_json(keys), len(keys)], prepare=False)
            checks, self.checks = send_reads(raw, self.checks), []
        rows = read.fetchall()
        read.close()
        if pairs:
            self.keys.update(dict.fromkeys(pairs))
            self.keys.update(((a, k), entry_id) for a, k, entry_id in found.fetchall())
            found.close()
        check_reads(checks)
        return rows

    def _key_pairs(self, accounts: set[int]) -> set[tuple[int, str]]:
        """The (account, idempotency key) pairs of the batch's requests on `accounts` that
        name a key."""
        return {
            (order, key)
            for order, key in zip(self.orders, self.request_keys, strict=True)
            if isinstance(key, str) and order in accounts
        }

    def _read_keys(self, conn: Connection) -> None:
        """SQLite: which idempotency keys of the batch's requests are taken, and the
        largest entry id, in one statement. The batch holds the database's write lock, so
        nothing else writes an entry until it commits: its charges' entries, written at
        its end in their order, take the ids one after another from there -- those one
        transaction per charge would have given them -- which each charge's answer
        therefore carries at once."""
        pairs = self._key_pairs(set(self.orders) - {0})
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.execute(_sql.keys_and_last_entry(len(pairs)), [v for pair in pairs for v in pair])
        rows = cursor.fetchall()
        cursor.close()
        keys = self.keys
        keys.update(dict.fromkeys(pairs))
        for account_id, key, entry_id in rows:
            if account_id is None:
                self.next_entry = (entry_id or 0) + 1
            else:
                keys[(account_id, key)] = entry_id

    def key_state(self, conn: Connection, account_id: int, key: str) -> tuple[str, int | None]:
        """For a charge of a held account, what the batch knows of its key: ("taken", the
        id of the entry holding it) -- a replay; ("free", None) -- the charge now claims it
        and its entry is written at the end; ("claimed", None) -- a charge before it in the
        batch claimed it; ("unknown", None) -- not looked up (PostgreSQL): its entry is
        written now, which checks it. SQLite looks such a key up now, when its entry would
        be written at the end."""
        state = self.keys.get((account_id, key), False)
        if state is False:
            if self.next_entry is None:
                return "unknown", None
            params = {"account_id": account_id, "key": key}
            state = self.keys[(account_id, key)] = _sql.ENTRY_OF_KEY.scalar(conn, params)
        if state is None:
            self.keys[(account_id, key)] = CLAIMED
            return "free", None
        return ("claimed", None) if state == CLAIMED else ("taken", state)

    def write_later(self, params: dict[str, Any]) -> bool:
        """Keep the entry of a charge whose key it claimed, to write at the end; False when
        the charge did not claim it (write it now)."""
        if self.keys.get((params["account_id"], params["idempotency_key"])) != CLAIMED:
            return False
        self.later.append(params)
        self.answers.append(None)
        return True

    def entry_later(self, params: dict[str, Any], moves: list[tuple[str, str, int]]) -> int | None:
        """SQLite: keep a held charge's entry and its transfers to write at the end, and
        give the id its entry takes there; None when the batch has not read the largest
        entry id since it last wrote what was pending (write it now)."""
        entry_id = self.next_entry
        if entry_id is None:
            return None
        self.next_entry = entry_id + 1
        params["id"] = entry_id
        account_id = params["account_id"]
        key = params["idempotency_key"]
        if key is not None:  # a second charge with the key reads the first's entry
            self.keys[(account_id, key)] = CLAIMED
        self.later.append(params)
        for debit, credit, amount in moves:
            self.transfers.append(
                {"entry_id": entry_id, "account_id": account_id, "debit_book": debit,
                 "credit_book": credit, "amount": amount}
            )  # fmt: skip
        return entry_id

    def answer_later(self, answer: Any) -> None:
        """The answer of the charge whose entry `write_later` just kept: its `entry_id` is
        set when the entry is written, before the batch commits (and so before anybody is
        answered)."""
        self.answers[-1] = answer

    def move(
        self,
        account_id: int,
        agent_id: int,
        balances: tuple[int, int] | None,
        account_spend: tuple[str, int] | None,
        spend: tuple[str, int] | None,
    ) -> None:
        """Record what a posting moved on held rows: the balances after it, the account's
        and the agent's (month, month spend)."""
        held = self.accounts[account_id]
        changes: dict[str, Any] = {}
        if balances is not None or account_spend is not None:
            held.moved = True
            if balances is not None:
                changes["plan_balance"], changes["wallet_balance"] = balances
            if account_spend is not None:
                changes["account_month"], changes["account_month_spend"] = account_spend
            for agent, snapshot in held.snapshots.items():
                if agent != agent_id:
                    held.snapshots[agent] = _changed(snapshot, changes)
        if spend is not None:
            held.spent.add(agent_id)
            changes["month"], changes["month_spend"] = spend
        if changes:  # the charging agent's snapshot rebuilt once, not once per kind of row
            held.snapshots[agent_id] = _changed(held.snapshots[agent_id], changes)

    def add_usage(
        self, account_id: int, agent_id: int, key: _rollup.UsageKey, quantity: int, plan: int,
        wallet: int,
    ) -> None:  # fmt: skip
        row = self.usage.get((account_id, key.day, agent_id, key.unit))
        if row is None:
            self.usage[(account_id, key.day, agent_id, key.unit)] = [quantity, plan, wallet]
        else:
            row[0] += quantity
            row[1] += plan
            row[2] += wallet

    def flush(self, conn: Connection, *, commit: bool = False) -> None:
        """Write what is pending and forget what is held: on SQLite one executemany per
        kind of row; on PostgreSQL one statement per kind of row, all in one pipeline, and
        with `commit` (the batch's end) its COMMIT too (ledger/journal/_pg_writes.py)."""
        accounts, self.accounts = self.accounts, {}
        usage, self.usage = self.usage, {}
        later, self.later = self.later, []
        answers, self.answers = self.answers, []
        transfers, self.transfers = self.transfers, []
        self.read = False
        self.keys = {}
        self.next_entry = None
        raw = conn.connection.dbapi_connection
        before = getattr(raw, "total_changes", 0)
        # Each kind of row as tuples in the order of its statement's columns (_sql.ROWS).
        balances, spends = [], []
        for account_id, held in accounts.items():
            if not held.moved and not held.spent:
                continue
            snapshot = next(iter(held.snapshots.values()))
            if held.moved:
                balances.append(
                    (account_id, snapshot.plan_balance, snapshot.wallet_balance,
                     snapshot.account_month, snapshot.account_month_spend)
                )  # fmt: skip
            for agent_id in held.spent:
                agent = held.snapshots[agent_id]
                spends.append((agent_id, agent.month, agent.month_spend))
        rows = [(*key, *moved) for key, moved in usage.items()]
        kinds = ((_sql.SET_BALANCES, balances), (_sql.SPEND, spends),
                 (_rollup.UPSERT["sqlite"], rows))  # fmt: skip
        named = [
            [dict(zip(_sql.ROWS[statement], row, strict=True)) for row in kind]
            for statement, kind in kinds
        ]
        if conn.dialect.name != "postgresql":
            # The entries first, in the order their charges ran (and so their ids).
            if later:
                _sql.INSERT_ENTRY_WITH_ID.run_many(conn, later)
            if transfers:
                _sql.INSERT_TRANSFER_HELD.run_many(conn, transfers)
            for (statement, _), kind in zip(kinds, named, strict=True):
                if kind:
                    statement.run_many(conn, kind)
            self.flushed += getattr(raw, "total_changes", 0) - before
            return
        # PostgreSQL: one statement per kind of row, all in one pipeline (_pg_writes).
        checks, self.checks = self.checks, []
        try:
            _pg_writes.write_out(conn, checks, later, answers, named, commit=commit)
        except Exception as exc:
            if _pg_writes.key_raced(exc):
                raise KeyRaced(
                    "An idempotency key was taken while its account was locked."
                ) from exc
            raise

    def __bool__(self) -> bool:
        return bool(self.holding() or self.checks)

    def holding(self) -> bool:
        """It holds accounts or writes pending (not only reads handed over, which go with
        the next statement: `_driver.driver_cursor`)."""
        return bool(self.accounts or self.usage or self.later)


class RunAlone(RuntimeError):
    """Something the batch trusted did not hold: it rolls back and each request runs
    again alone (the connection is sound)."""


class KeyRaced(RunAlone):
    """An entry a batch wrote at its end found its idempotency key taken, although the
    batch found it free under the account's lock: something wrote the account's entries
    without its lock. The batch rolls back and each request runs again alone."""


#: Each field's place in a Snapshot.
_PLACE = {name: n for n, name in enumerate(Snapshot._fields)}


def _changed(snapshot: Snapshot, changes: dict[str, Any]) -> Snapshot:
    """`snapshot._replace(**changes)` for a charge: without its checks, which cost a held
    charge more than the rest of recording what it moved."""
    values = list(snapshot)
    for name, value in changes.items():
        values[_PLACE[name]] = value
    return Snapshot._make(values)


def begin(conn: Connection, orders: list[int], keys: list[str | None]) -> Batch:
    """Hold the accounts of `orders` (each request's) on this connection until `end` (its
    engine must be `watch`ed); `keys`, each request's idempotency key or None."""
    batch = conn.info[PENDING] = Batch(orders, keys)
    return batch


def end(conn: Connection, *, commit: bool) -> None:
    """Before the commit: write what is pending (on PostgreSQL, with the COMMIT: see
    `Batch.flush`). After a rollback: drop it."""
    batch = conn.info.pop(PENDING, None)
    if commit and batch:
        batch.flush(conn, commit=conn.dialect.name == "postgresql")


def current(conn: Connection) -> Batch | None:
    return conn.info.get(PENDING)


def flush_pending(conn: Connection, *_: object) -> None:
    """Before a statement that is not one of the batch's charges: write what is pending and
    forget what is held, so that the statement sees (and changes) the database as it
    would after those charges one by one."""
    begin_now(conn)  # a statement SQLAlchemy runs in a PostgreSQL batch: BEGIN first
    batch = conn.info.get(PENDING)
    if batch:
        batch.flush(conn)


def watch(engine: Engine) -> None:
    """Write what a batch holds pending before any other statement on the engine's
    connections (once per engine, before its writer connects)."""
    if not event.contains(engine, "before_cursor_execute", flush_pending):
        event.listen(engine, "before_cursor_execute", flush_pending)


def read_later(session: Session, sql: str, check: Callable[[Any], None]) -> bool:
    """PostgreSQL, in a writer's batch: run `sql`, a read of one row, in the batch's next
    pipeline -- with its first charge's read ahead, with the next statement of its own
    (`_driver.driver_cursor`), or with what it writes before another statement or its
    commit -- rather than in a round trip of its own now, and hand `check` its row (or
    None) then. Whatever the batch did meanwhile is not yet
    committed: `check` raises `RunAlone` when the row shows it trusted what no longer held,
    and the batch rolls back and every request runs again alone. False: not in such a
    batch (read it now)."""
    conn = session.info.get(CONNECTION)
    held = None if conn is None else current(conn)
    if held is None or conn.dialect.name != "postgresql":
        return False
    held.checks.append((sql, check))
    return True


def answer_later(session: Session, answer: Any) -> None:
    """Hand the answer of a charge whose entry the batch writes at its end (`Posted`'s
    entry id None) to the batch, which sets its `entry_id` then."""
    batch = current(connection(session))
    assert batch is not None, "only a writer's batch writes an entry later"
    batch.answer_later(answer)
