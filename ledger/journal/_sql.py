"""The journal's prebuilt statements, private to it: the charge's locked read, and the
writes of one posting (the guarded balance move, the entry, its transfers, the agent's
month spend) as separate statements and, for PostgreSQL, as one statement.

Statements are built once (per shape): building and hashing a statement costs more than
running it. They run straight on the driver (ledger/journal/_driver.py).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    String,
    bindparam,
    exists,
    insert,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import ReturningUpdate
from sqlalchemy.sql.elements import Label

from ledger.journal import _rollup
from ledger.journal._driver import DriverStatement
from ledger.models import Account, Agent, Entry, Transfer
from ledger.policy import Snapshot

accounts = Account.__table__
agents = Agent.__table__
entries = Entry.__table__
transfers = Transfer.__table__

#: The columns a posting writes to its entry, besides its account.
ENTRY_FIELDS = ("agent_id", "kind", "idempotency_key", "request_hash", "unit", "quantity",
                "amount", "refused_reason", "call_id", "refund_of", "memo", "created_at",
                "request_id")  # fmt: skip

_AGENT_COLUMNS = {"agent_id": agents.c.id, "agent_name": agents.c.name}


def _snapshot_column(name: str) -> Label[Any]:
    """The agent's or the account's column a `Snapshot` field is read from."""
    column = _AGENT_COLUMNS.get(name)
    if column is None:
        column = agents.c[name] if name in agents.c else accounts.c[name]
    return column.label(name)


#: The charge's one locked read: a `Snapshot` followed by the id of the entry that already
#: holds the idempotency key, if any.
READ_FOR_CHARGE = DriverStatement(
    select(
        *(_snapshot_column(name) for name in Snapshot._fields),
        select(entries.c.id)
        .where(
            entries.c.account_id == bindparam("account_id"),
            entries.c.idempotency_key == bindparam("key"),
        )
        .scalar_subquery()
        .label("existing_id"),
    )
    .select_from(agents.join(accounts, accounts.c.id == agents.c.account_id))
    .where(agents.c.id == bindparam("agent_id"), agents.c.account_id == bindparam("account_id"))
    .with_for_update(of=accounts),
    # It reads one account's rows, which a batch holding that account writes out first
    # (ledger/journal/reads.py): what the batch holds for other accounts does not matter.
    batched=True,
)


@cache
def read_accounts(count: int) -> DriverStatement:
    """A writer's batch: every agent of `count` accounts (`account_<n>`) as a `Snapshot`,
    followed by its account's id, the accounts locked in ascending id order in this one
    statement (PostgreSQL locks the rows as the sorted result yields them), so that two
    batches locking overlapping accounts cannot deadlock. Built once per count."""
    ids = [bindparam(f"account_{n}", type_=Integer) for n in range(count)]
    return DriverStatement(
        select(*(_snapshot_column(name) for name in Snapshot._fields), accounts.c.id)
        .select_from(agents.join(accounts, accounts.c.id == agents.c.account_id))
        .where(accounts.c.id.in_(ids))
        .order_by(accounts.c.id, agents.c.id)
        .with_for_update(of=accounts),
        # The batch reads these before it holds them: nothing of theirs is pending.
        batched=True,
    )


def _guarded_move(account_spend: bool = False) -> ReturningUpdate[Any]:
    """Move the cached balances by (plan, wallet) unless either would go below zero; with
    `account_spend`, record the account's month spend in the same statement."""
    plan, wallet = bindparam("plan", type_=BigInteger), bindparam("wallet", type_=BigInteger)
    values: dict[str, Any] = {
        "plan_balance": accounts.c.plan_balance + plan,
        "wallet_balance": accounts.c.wallet_balance + wallet,
    }
    if account_spend:
        values["account_month"] = bindparam("account_month", type_=String)
        values["account_month_spend"] = bindparam("account_month_spend", type_=BigInteger)
    return (
        update(accounts)
        .where(
            accounts.c.id == bindparam("account_id"),
            accounts.c.plan_balance >= -plan,
            accounts.c.wallet_balance >= -wallet,
        )
        .values(**values)
        .returning(accounts.c.id, accounts.c.plan_balance, accounts.c.wallet_balance)
    )


def _entry_binds() -> dict[str, object]:
    return {name: bindparam(name, type_=entries.c[name].type) for name in ENTRY_FIELDS}


_TRANSFER_COLUMNS = ("entry_id", "account_id", "debit_book", "credit_book", "amount")

MOVE = DriverStatement(_guarded_move())
MOVE_AND_ACCOUNT_SPEND = DriverStatement(_guarded_move(account_spend=True))
INSERT_ENTRY = DriverStatement(
    insert(entries)
    .values(account_id=bindparam("account_id", type_=Integer), **_entry_binds())
    .returning(entries.c.id)
)
INSERT_TRANSFER = DriverStatement(
    insert(transfers).values(
        {name: bindparam(name, type_=transfers.c[name].type) for name in _TRANSFER_COLUMNS}
    )
)
INSERT_TRANSFER_HELD = DriverStatement(INSERT_TRANSFER.statement, batched=True)
#: A held account's balances and month spend as its batch's last charge left them.
SET_BALANCES = DriverStatement(
    update(accounts)
    .where(accounts.c.id == bindparam("account_id"))
    .values(
        plan_balance=bindparam("plan_balance"),
        wallet_balance=bindparam("wallet_balance"),
        account_month=bindparam("account_month"),
        account_month_spend=bindparam("account_month_spend"),
    )
)


def _new_entry(insert: Any) -> Any:
    """The entry, unless its idempotency key is taken (then nothing, and no row back).

    PostgreSQL takes the entry's id from its sequence before it looks for a conflict, so a
    replayed key would leave a gap one charge at a time does not: the entry is inserted
    only where its key is not found (a race-free check, as the account is locked by whoever
    writes its entries); ON CONFLICT stays the guarantee."""
    account = bindparam("account_id", type_=Integer)
    binds = _entry_binds()
    if insert is sqlite.insert:  # a taken key costs SQLite's rowid nothing
        new = insert(entries).values(account_id=account, **binds)
    else:
        taken = exists().where(
            entries.c.account_id == account, entries.c.idempotency_key == binds["idempotency_key"]
        )
        new = insert(entries).from_select(
            ["account_id", *ENTRY_FIELDS], select(account, *binds.values()).where(~taken)
        )
    return new.on_conflict_do_nothing(
        index_elements=[entries.c.account_id, entries.c.idempotency_key]
    ).returning(entries.c.id)


#: SQLite: a held account's entry (its transfers follow, `INSERT_TRANSFER_HELD`).
INSERT_NEW_ENTRY = DriverStatement(_new_entry(sqlite.insert), batched=True)
#: SQLite: a held account's entry written at its batch's end with the id the batch gave it
#: (`Batch.entry_later`): a plain insert, so that a key or id found taken there raises and
#: the batch runs again one request at a time.
INSERT_ENTRY_WITH_ID = DriverStatement(
    insert(entries).values(
        id=bindparam("id", type_=Integer),
        account_id=bindparam("account_id", type_=Integer),
        **_entry_binds(),
    ),
    batched=True,
)
#: SQLite: the entry holding one idempotency key (a key the batch did not look up ahead).
ENTRY_OF_KEY = DriverStatement(
    select(entries.c.id).where(
        entries.c.account_id == bindparam("account_id", type_=Integer),
        entries.c.idempotency_key == bindparam("key", type_=String),
    ),
    batched=True,
)


@cache
def keys_and_last_entry(pairs: int) -> str:
    """SQLite: which of `pairs` (account, idempotency key) pairs an entry holds (account,
    key, entry id; each through the unique index), then a row (NULL, NULL, the largest
    entry id): one statement, its parameters the pairs' values in turn."""
    last = "SELECT NULL, NULL, max(id) FROM entries"
    if not pairs:
        return last
    values = ", ".join(["(?, ?)"] * pairs)
    return (
        "SELECT e.account_id, e.idempotency_key, e.id"
        f" FROM (VALUES {values}) AS k JOIN entries AS e"
        " ON e.account_id = k.column1 AND e.idempotency_key = k.column2"
        f" UNION ALL {last}"
    )


SPEND = DriverStatement(
    update(agents)
    .where(agents.c.id == bindparam("agent_id"))
    .values(month=bindparam("month"), month_spend=bindparam("month_spend"))
)


@cache
def held_statement(moves: int) -> DriverStatement:
    """PostgreSQL: a held account's entry and its transfers in one statement, unless the
    entry's idempotency key is taken (then nothing is written and no row comes back)."""
    return one_statement(moves, False, False, new_key=True)


def as_json(rows: list[dict[str, Any]]) -> str:
    """Rows as the one parameter of a statement that reads them with `json_to_recordset`
    (a time as RFC 3339 with its offset, a day as ISO 8601). PostgreSQL statements over many
    rows take them so: orjson encodes a batch's rows in a few microseconds, where psycopg's
    dumping of an array per column cost 15 us a charge (measured, 16 charges a batch)."""
    return orjson.dumps(rows).decode()


def _typed(columns: list[tuple[str, Any]]) -> str:
    """`name TYPE, ...`: each name typed as its column, as PostgreSQL spells it."""
    dialect = postgresql.dialect()
    return ", ".join(f"{name} {column.type.compile(dialect=dialect)}" for name, column in columns)


def _recordset(columns: list[tuple[str, Any]], *, counted: bool = False) -> str:
    """`json_to_recordset(%s::json) AS v(name TYPE, ...)`: the rows of `as_json`.

    `counted`: the rows' number is the next parameter (`LIMIT %s`), for a statement that
    joins them to a table: PostgreSQL guesses 100 rows from a function and would then scan
    a table of 10,000 accounts rather than look 32 up by id (2 ms against 0.1, measured)."""
    rows = f"json_to_recordset(%s::json) AS v({_typed(columns)})"
    return f"(SELECT * FROM {rows} LIMIT %s) AS v" if counted else rows


#: PostgreSQL: which of the batch's (account, idempotency key) pairs (`as_json`: rows of
#: `account_id` and `key`, then their number) an entry holds, each pair looked up on its
#: own through the unique index. Run unprepared (ledger/journal/batch.py says why).
KEYS_TAKEN = (
    "SELECT v.account_id, v.key, e.id FROM "
    + _recordset(
        [("account_id", entries.c.account_id), ("key", entries.c.idempotency_key)], counted=True
    )
    + " CROSS JOIN LATERAL (SELECT id FROM entries"
    " WHERE account_id = v.account_id AND idempotency_key = v.key) AS e"
)


@cache
def one_statement(
    moves: int,
    moves_balances: bool,
    spend: bool,
    account_spend: bool = False,
    usage: bool = False,
    *,
    new_key: bool = False,
) -> DriverStatement:
    """PostgreSQL: a whole posting in one statement (data-modifying CTEs), so a charge is
    one round trip after its locked read. Built once per shape: how many transfers,
    whether cached balances move, whether the agent's month spend is recorded, whether the
    account's month spend is (only with balances: it rides on their move), whether a
    charge adds to its usage rollup row (the rollup's UPSERT, `_rollup.upsert_after`).

    If the guarded move matches no row (it would overdraw), nothing else is written and the
    statement returns no row. Parameters are those of the separate statements; the
    transfers' are `debit_<n>`, `credit_<n>`, `amount_<n>`; `new_key`: nothing is written
    when the idempotency key is taken.
    """
    ctes = []
    if moves_balances:
        move = _guarded_move(account_spend).cte("move")
        values = select(move.c.id, *_entry_binds().values())
        entry = insert(entries).from_select(["account_id", *ENTRY_FIELDS], values)
    elif new_key:
        move = None
        entry = _new_entry(postgresql.insert)
    else:
        move = None
        entry = insert(entries).values(
            account_id=bindparam("account_id", type_=Integer), **_entry_binds()
        )
    if not new_key:
        entry = entry.returning(entries.c.id)
    entry = entry.cte("entry")
    if moves:
        rows = union_all(
            *(
                select(
                    bindparam(f"debit_{n}", type_=String).label("debit_book"),
                    bindparam(f"credit_{n}", type_=String).label("credit_book"),
                    bindparam(f"amount_{n}", type_=BigInteger).label("amount"),
                )
                for n in range(moves)
            )
        )
        rows = rows.subquery("moves")
        account = bindparam("account_id", type_=Integer)
        ctes.append(
            insert(transfers)
            .from_select(
                list(_TRANSFER_COLUMNS),
                select(
                    entry.c.id, account, rows.c.debit_book, rows.c.credit_book, rows.c.amount
                ).select_from(entry.join(rows, true())),
            )
            .cte("transfers")
        )
    if spend:
        ctes.append(
            update(agents)
            .where(agents.c.id == bindparam("agent_id"), exists(select(entry.c.id)))
            .values(month=bindparam("month"), month_spend=bindparam("month_spend"))
            .cte("spend")
        )
    if usage:
        ctes.append(_rollup.upsert_after(entry).cte("usage"))
    result: Select
    if move is not None:
        result = select(entry.c.id, move.c.plan_balance, move.c.wallet_balance).select_from(
            entry.join(move, true())
        )
    else:
        result = select(entry.c.id)
    return DriverStatement(result.add_cte(*ctes) if ctes else result, batched=new_key)


#: Each column of a charge's parameters `LATER_ENTRIES` reads (its entry's, then its two
#: transfers'), with the column whose type it takes.
_LATER_COLUMNS = [
    ("account_id", entries.c.account_id),
    *((name, entries.c[name]) for name in ENTRY_FIELDS),
    *(
        (f"{name}_{n}", transfers.c[column])
        for n in range(2)
        for name, column in (
            ("debit", "debit_book"),
            ("credit", "credit_book"),
            ("amount", "amount"),
        )  # fmt: skip
    ),
]
#: PostgreSQL: the entries of a batch's charges whose keys it found free, and their
#: transfers (plan, wallet; a zero is left out), written at its end (`Batch.flush`) in one
#: statement: PostgreSQL runs one statement, not one a charge (an executemany cost it 68 us
#: a charge, measured). Its one parameter is the charges' parameters (`as_json`). Entries
#: and transfers are inserted in the charges' order, so their ids are those one transaction
#: per charge gives; each entry's id comes back in that order. A key taken meanwhile
#: (nothing should take one: the batch holds its account) fails the statement, and so the
#: batch, before it can commit: no ON CONFLICT (ledger/journal/batch.py).
LATER_ENTRIES = (
    f"WITH given AS (SELECT * FROM ROWS FROM (json_to_recordset(%s::json)"
    f" AS ({_typed(_LATER_COLUMNS)})) WITH ORDINALITY"
    f" AS g({', '.join(name for name, _ in _LATER_COLUMNS)}, n)),"
    f" entry AS (INSERT INTO entries (account_id, {', '.join(ENTRY_FIELDS)})"
    f" SELECT account_id, {', '.join(ENTRY_FIELDS)} FROM given ORDER BY n"
    " RETURNING id, account_id, idempotency_key),"
    " written AS (SELECT entry.id, given.* FROM entry"
    " JOIN given USING (account_id, idempotency_key)),"
    f" moved AS (INSERT INTO transfers ({', '.join(_TRANSFER_COLUMNS)})"
    " SELECT w.id, w.account_id, t.debit, t.credit, t.amount FROM written AS w"
    " CROSS JOIN LATERAL (VALUES (0, w.debit_0, w.credit_0, w.amount_0),"
    " (1, w.debit_1, w.credit_1, w.amount_1)) AS t(m, debit, credit, amount)"
    " WHERE t.amount > 0 ORDER BY w.n, t.m)"
    " SELECT id FROM written ORDER BY n"
)


#: The columns of the batch's writes at its end (ledger/journal/batch.py), in the order
#: of its rows.
ROWS = {
    SET_BALANCES: ("account_id", "plan_balance", "wallet_balance", "account_month",
                   "account_month_spend"),
    SPEND: ("agent_id", "month", "month_spend"),
    _rollup.UPSERT["sqlite"]: _rollup.COLUMNS,
}  # fmt: skip
#: PostgreSQL: the same writes, each for all of a batch's rows in one statement over them
#: (`as_json`, keyed as in ROWS; the updates then take the rows' number, `_recordset`).
SET_BALANCES_JSON = (
    "UPDATE accounts SET plan_balance = v.plan_balance, wallet_balance = v.wallet_balance,"
    " account_month = v.account_month, account_month_spend = v.account_month_spend FROM "
    + _recordset(
        [("account_id", accounts.c.id)]
        + [(name, accounts.c[name]) for name in ROWS[SET_BALANCES][1:]],
        counted=True,
    )
    + " WHERE accounts.id = v.account_id"
)
SPEND_JSON = (
    "UPDATE agents SET month = v.month, month_spend = v.month_spend FROM "
    + _recordset(
        [("agent_id", agents.c.id)] + [(name, agents.c[name]) for name in ROWS[SPEND][1:]],
        counted=True,
    )
    + " WHERE agents.id = v.agent_id"
)
UPSERT_JSON = _rollup.upsert_from(_recordset)
