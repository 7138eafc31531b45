"""Core statements compiled once per database and run straight on the DB-API cursor.

Private to the journal: the gate runs a handful of fixed statements per charge, and
SQLAlchemy's per-execution bookkeeping costs more than SQLite takes to run them. The SQL
still comes from the Core statements (so it matches the models and both dialects); only the
execution is direct.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable


class _Compiled:
    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.compiled = compiled
        self.sql = compiled.string
        self.positional = dialect.positional
        self.order: Sequence[str] = compiled.positiontup or ()
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                self.processors[name] = proc

    def parameters(self, params: Mapping[str, Any]) -> Any:
        values = self.compiled.construct_params(params, escape_names=False, _check=True)
        for name, proc in self.processors.items():
            if name in values:
                values[name] = proc(values[name])
        if self.positional:
            return tuple(values[name] for name in self.order)
        escaped = self.compiled.escaped_bind_names
        return {escaped.get(k, k): v for k, v in values.items()} if escaped else values


class DriverStatement:
    """A prebuilt statement; `execute` returns the DB-API cursor it ran on."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = _Compiled(self.statement, dialect)
        return found

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        compiled = self._for(conn.dialect)
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute(compiled.sql, compiled.parameters(params))
        return cursor

    def executemany(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        compiled = self._for(conn.dialect)
        cursor = conn.connection.driver_connection.cursor()
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

    def rowcount(self, conn: Connection, params: Mapping[str, Any]) -> int:
        cursor = self.execute(conn, params)
        count = cursor.rowcount
        cursor.close()
        return count
