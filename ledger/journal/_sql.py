"""The journal's prebuilt statements, private to it: the charge's locked read, and the
writes of one posting (the guarded balance move, the entry, its transfers, the agent's
month spend) as separate statements and, for PostgreSQL, as one statement.

Statements are built once (per shape): building and hashing a statement costs more than
running it. They run straight on the driver (ledger/journal/_driver.py).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    String,
    bindparam,
    exists,
    insert,
    literal_column,
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


def _new_entry(insert: Any, *, looked_up: bool = False) -> Any:
    """The entry, unless its idempotency key is taken (then nothing, and no row back).

    PostgreSQL takes the entry's id from its sequence before it looks for a conflict, so a
    replayed key would leave a gap one charge at a time does not: the entry is inserted
    only where its key is not found (a race-free check, as the account is locked by whoever
    writes its entries), unless the caller `looked_up` the key already; ON CONFLICT stays
    the guarantee."""
    account = bindparam("account_id", type_=Integer)
    binds = _entry_binds()
    if insert is sqlite.insert or looked_up:  # a taken key costs SQLite's rowid nothing
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


#: PostgreSQL: which of the batch's (account, idempotency key) pairs an entry holds, each
#: pair looked up on its own (through the unique index, once the table has statistics;
#: never a hash join over the whole table).
KEYS_TAKEN = (
    "SELECT k.account_id, k.key, e.id"
    " FROM unnest(%s::integer[], %s::varchar[]) AS k(account_id, key)"
    " CROSS JOIN LATERAL (SELECT id FROM entries"
    " WHERE account_id = k.account_id AND idempotency_key = k.key) AS e"
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
    skip_zero: bool = False,
    looked_up: bool = False,
) -> DriverStatement:
    """PostgreSQL: a whole posting in one statement (data-modifying CTEs), so a charge is
    one round trip after its locked read. Built once per shape: how many transfers,
    whether cached balances move, whether the agent's month spend is recorded, whether the
    account's month spend is (only with balances: it rides on their move), whether a
    charge adds to its usage rollup row (the rollup's UPSERT, `_rollup.upsert_after`).

    If the guarded move matches no row (it would overdraw), nothing else is written and the
    statement returns no row. Parameters are those of the separate statements; the
    transfers' are `debit_<n>`, `credit_<n>`, `amount_<n>`; with `skip_zero`, a transfer
    of zero is left out; `new_key`: nothing is written when the idempotency key is taken
    (`looked_up`: the caller found it free).
    """
    ctes = []
    if moves_balances:
        move = _guarded_move(account_spend).cte("move")
        values = select(move.c.id, *_entry_binds().values())
        entry = insert(entries).from_select(["account_id", *ENTRY_FIELDS], values)
    elif new_key:
        move = None
        entry = _new_entry(postgresql.insert, looked_up=looked_up)
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
        if skip_zero:
            given = rows.subquery("given")
            rows = select(given).where(given.c.amount > literal_column("0"))
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


#: PostgreSQL: a charge's entry and its two transfers (plan, wallet; one of zero is left
#: out), written at its batch's end (`Batch.flush`): one shape for every charge, so that
#: all of a batch's run as one executemany.
LATER_ENTRY = one_statement(2, False, False, new_key=True, skip_zero=True, looked_up=True)


#: The columns of the batch's writes at its end (ledger/journal/batch.py), in the order
#: of its rows.
ROWS = {
    SET_BALANCES: ("account_id", "plan_balance", "wallet_balance", "account_month",
                   "account_month_spend"),
    SPEND: ("agent_id", "month", "month_spend"),
    _rollup.UPSERT["sqlite"]: ("account_id", "day", "agent_id", "unit", "quantity",
                               "from_plan", "from_wallet"),
}  # fmt: skip
#: PostgreSQL: the same writes, each for all of a batch's rows in one statement over
#: arrays (one per column, in the order of ROWS).
SET_BALANCES_ARRAYS = (
    "UPDATE accounts SET plan_balance = v.plan_balance, wallet_balance = v.wallet_balance,"
    " account_month = v.account_month, account_month_spend = v.account_month_spend"
    " FROM unnest(%s::integer[], %s::bigint[], %s::bigint[], %s::varchar[], %s::bigint[])"
    " AS v(id, plan_balance, wallet_balance, account_month, account_month_spend)"
    " WHERE accounts.id = v.id"
)
SPEND_ARRAYS = (
    "UPDATE agents SET month = v.month, month_spend = v.month_spend"
    " FROM unnest(%s::integer[], %s::varchar[], %s::bigint[]) AS v(id, month, month_spend)"
    " WHERE agents.id = v.id"
)
