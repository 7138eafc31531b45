"""Core statements compiled once per database and run straight on the DB-API cursor.

Private to the journal: the gate runs a handful of fixed statements per charge, and
SQLAlchemy's per-execution bookkeeping costs more than SQLite takes to run them. The SQL
still comes from the Core statements (so it matches the models and both dialects); only the
execution is direct.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

_REQUIRED = object()
#: The key of a writer's batch (ledger/journal/batch.py) in its connection's `info`.
PENDING = "journal.batch"
#: The key of the writer's connection in its session's `info`, while a batch runs.
CONNECTION = "journal.connection"
#: PostgreSQL writer: in its connection's `info` while the batch's BEGIN is still to be
#: sent. psycopg would spend a round trip of its own on each BEGIN (it syncs a pipeline
#: after one), so the writer's connection is in the driver's autocommit mode and a batch
#: sends its BEGIN with its first statement (`begin_with`) and its COMMIT with its last
#: writes (ledger/journal/batch.py): two round trips a batch fewer. Every statement of a
#: batch therefore goes through `begin_with`, `begin_now` or `driver_cursor`.
BEGIN = "journal.begin"
#: PostgreSQL writer: in its connection's `info` once the batch's COMMIT went with its
#: last writes and succeeded: from then on nothing of the batch may run again.
COMMITTED = "journal.committed"


def begin_with(conn: Connection, raw: Any) -> None:
    """In a pipeline open on `raw`, the driver connection of `conn`: queue the batch's
    BEGIN first, if it is still to be sent."""
    if conn.info.pop(BEGIN, False):
        raw.execute("BEGIN")


def begin_now(conn: Connection) -> None:
    """Send the batch's BEGIN now, if it is still to be sent (a round trip of its own:
    before a statement that SQLAlchemy runs)."""
    if conn.info.pop(BEGIN, False):
        conn.connection.dbapi_connection.execute("BEGIN")  # type: ignore[union-attr]


#: A read handed over to a PostgreSQL batch (`batch.read_later`): its SQL and what checks
#: its row.
Check = tuple[str, Callable[[Any], None]]


def send_reads(raw: Any, checks: list[Check]) -> list[tuple[Any, Callable[[Any], None]]]:
    """In a pipeline open on `raw`: send the reads handed over; each one's cursor, with
    its check, for `check_reads`."""
    sent = []
    for sql, checked in checks:
        cursor = raw.cursor()
        cursor.execute(sql)
        sent.append((cursor, checked))
    return sent


def check_reads(sent: list[tuple[Any, Callable[[Any], None]]]) -> None:
    """Hand each read handed over its row (its check may raise `batch.RunAlone`)."""
    for cursor, checked in sent:
        row = cursor.fetchone()
        cursor.close()
        checked(row)


def driver_cursor(conn: Connection, sql: str, params: Any = None) -> Any:
    """Run `sql` straight on the driver and return its cursor. In a PostgreSQL batch whose
    BEGIN is still to be sent, or that holds reads handed over (`batch.read_later`), they
    go in one pipeline with it: one round trip; the reads are checked after it."""
    raw = conn.connection.dbapi_connection
    cursor = raw.cursor()  # type: ignore[union-attr]
    args = () if params is None else (params,)
    batch = conn.info.get(PENDING)
    checks = batch.checks if batch is not None else None
    if conn.info.get(BEGIN) or checks:
        if checks:
            batch.checks = []
        with raw.pipeline():  # type: ignore[union-attr]
            begin_with(conn, raw)
            sent = send_reads(raw, checks or [])
            cursor.execute(sql, *args)
        check_reads(sent)
    else:
        cursor.execute(sql, *args)
    return cursor


def connection(session: Session) -> Connection:
    """The session's connection: in a writer's batch, the writer's own, without asking the
    session (which would begin its own transaction bookkeeping for a charge that needs
    none); elsewhere `session.connection()`. (A savepoint the session begins is sent when
    the session is asked for its connection: whoever begins one asks, as the writer does.)"""
    conn = session.info.get(CONNECTION)
    return session.connection() if conn is None else conn


class _Compiled:
    """The statement's SQL for one database, and how to turn a request's values into the
    driver's parameters: each bind's value (the caller's, or the statement's own constant)
    through its type's bind processor, in the driver's order."""

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        # A positional driver takes the values as a tuple in the statement's order.
        self.ordered: Callable[[dict[str, Any]], tuple[Any, ...]] | None = None
        order = compiled.positiontup if dialect.positional else None
        if order:
            pick = itemgetter(*order)
            self.ordered = pick if len(order) > 1 else lambda values: (pick(values),)
        escaped = {} if dialect.positional else (compiled.escaped_bind_names or {})
        self.binds: list[tuple[str, str, Any, Callable[[Any], Any] | None]] = []
        for name, bind in compiled.binds.items():  # one per name, however often it is used
            fixed = _REQUIRED if bind.required else bind.effective_value
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            self.binds.append((bind.key, escaped.get(name, name), fixed, proc))
        # Every charge runs this for each of its statements: when each value is the
        # caller's (no constant) and the driver takes them in order, pick them straight from
        # the caller's values and run only the processors there are.
        self._picked: Callable[[Mapping[str, Any]], Any] | None = None
        if order and all(fixed is _REQUIRED for _, _, fixed, _ in self.binds):
            by_name = {name: (key, proc) for key, name, _, proc in self.binds}
            picked = [by_name[name] for name in order]
            pick_keys = itemgetter(*(key for key, _ in picked))
            procs = [(n, proc) for n, (_, proc) in enumerate(picked) if proc is not None]
            single = len(picked) == 1
            self._picked = _picker(pick_keys, procs, single)

    def parameters(self, params: Mapping[str, Any]) -> Any:
        if self._picked is not None:
            return self._picked(params)
        values = {}
        for key, name, fixed, proc in self.binds:
            value = params[key] if fixed is _REQUIRED else fixed
            values[name] = value if proc is None else proc(value)
        return values if self.ordered is None else self.ordered(values)


def _picker(
    pick: Callable[[Mapping[str, Any]], Any],
    procs: list[tuple[int, Callable[[Any], Any]]],
    single: bool,
) -> Callable[[Mapping[str, Any]], Any]:
    """The driver's positional parameters from the caller's values: `pick` in order, then
    each processor on its position."""
    if single:
        proc = procs[0][1] if procs else None
        return lambda params: (pick(params) if proc is None else proc(pick(params)),)
    if not procs:
        return pick

    def parameters(params: Mapping[str, Any]) -> list[Any]:
        values = list(pick(params))
        for n, proc in procs:
            values[n] = proc(values[n])
        return values

    return parameters


class DriverStatement:
    """A prebuilt statement; `execute` returns the DB-API cursor it ran on.

    In a writer's batch, a statement first writes what the batch holds pending
    (ledger/journal/batch.py), unless it is one of the batch's own (`batched=True`: a
    charge's entry and transfers, and the pending writes themselves).
    """

    def __init__(self, statement: Executable, *, batched: bool = False) -> None:
        self.statement = statement
        self.batched = batched
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = _Compiled(self.statement, dialect)
        return found

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        compiled = self._for(conn.dialect)
        if not self.batched:
            pending = conn.info.get(PENDING)
            if pending is not None and pending.holding():
                pending.flush(conn)
        return driver_cursor(conn, compiled.sql, compiled.parameters(params))

    def run_many(self, conn: Connection, rows: list[Mapping[str, Any]]) -> None:
        """The statement once per row, in one executemany (PostgreSQL: pipelined), without
        writing what a batch holds pending first (these are its pending writes)."""
        compiled = self._for(conn.dialect)
        cursor = conn.connection.dbapi_connection.cursor()
        if len(rows) == 1:  # executemany costs more than one execute
            cursor.execute(compiled.sql, compiled.parameters(rows[0]))
        else:
            cursor.executemany(compiled.sql, [compiled.parameters(row) for row in rows])
        cursor.close()

    def one_or_none(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row as the driver's plain tuple, or None."""
        cursor = self.execute(conn, params)
        row = cursor.fetchone()
        cursor.close()
        return row

    def scalar(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        cursor = self.execute(conn, params)
        row = cursor.fetchone()
        cursor.close()
        return None if row is None else row[0]

    def run(self, conn: Connection, params: Mapping[str, Any]) -> None:
        self.execute(conn, params).close()

    def rowcount(self, conn: Connection, params: Mapping[str, Any]) -> int:
        cursor = self.execute(conn, params)
        count = cursor.rowcount
        cursor.close()
        return count
