"""SQLite: the journal writer's batches run on the event loop their requests came from,
between two of its turns, on one connection that never waits for SQLite's lock
(ledger/journal/writer.py says why)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from ledger.journal._batches import Batches, Busy, settle
from ledger.journal.checkpoints import Checkpointer

if TYPE_CHECKING:
    from ledger.journal.writer import Request


class OnLoop:
    """SQLite: the requests of one event loop, run in a batch between two of its turns."""

    def __init__(self, sqlite: SqliteConnection) -> None:
        self._sqlite = sqlite
        self.pending: list[Request] = []
        self._scheduled = False
        self._busy_for = 0

    def add(self, loop: asyncio.AbstractEventLoop, request: Request) -> None:
        self.pending.append(request)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        batch = self.pending[: self._sqlite.batches.max]
        del self.pending[: len(batch)]
        try:
            self._sqlite.run(batch)
        except Busy:
            # Another connection holds SQLite's write lock (another process, the
            # scheduler, another loop): try again shortly, without blocking this loop.
            self.pending[:0] = batch
            self._busy_for = min(self._busy_for + 1, 7)
            self._scheduled = True
            loop.call_later(0.0002 * 2**self._busy_for, self._flush, loop)
            return
        self._busy_for = 0
        settle(batch)
        if self.pending:
            self._scheduled = True
            loop.call_soon(self._flush, loop)


class SqliteConnection:
    """SQLite: the one connection the batches of every event loop run on, taken without
    waiting (`Busy` when another batch, or another connection, holds the write lock)."""

    def __init__(self, batches: Batches, idle: float) -> None:
        self.batches = batches
        self._idle = idle
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._session: Session | None = None
        self._last = 0.0
        database = batches.engine.url.database
        on_disk = database not in (None, "", ":memory:")
        self._checkpointer = Checkpointer(batches.engine, self._close_if_idle) if on_disk else None

    def run(self, batch: list[Request]) -> None:
        if not self._lock.acquire(blocking=False):
            raise Busy
        try:
            try:
                session = self._connection()
            except Exception:  # noqa: BLE001 - no database to talk to
                self.batches.alone(batch)  # each request gets the error it would alone
                return
            if not self.batches.run(session, batch):
                self._disconnect()
        finally:
            self._last = time.monotonic()
            self._lock.release()

    def _connection(self) -> Session:
        """The writer's connection's session (connecting first if need be)."""
        if self._session is None:
            conn = self.batches.engine.connect()
            raw = conn.connection.dbapi_connection
            assert raw is not None
            # Never wait for the lock on the loop (Busy instead), and leave checkpoints to
            # the checkpointer: a commit here never writes the database file or fsyncs.
            raw.execute("PRAGMA busy_timeout=0")
            if self._checkpointer is not None:
                raw.execute("PRAGMA wal_autocheckpoint=0")
                self._checkpointer.start()
            self._conn, self._session = conn, self.batches.session(conn)
        return self._session

    def _close_if_idle(self) -> bool:
        """Let go of the connection after `idle` seconds without a batch (True if so)."""
        if time.monotonic() - self._last < self._idle or not self._lock.acquire(blocking=False):
            return False
        try:
            self._disconnect()
            return True
        finally:
            self._lock.release()

    def close(self) -> None:
        with self._lock:
            self._disconnect()
        if self._checkpointer is not None:
            self._checkpointer.stop()

    def _disconnect(self) -> None:
        conn, self._conn, self._session = self._conn, None, None
        if conn is not None:
            # Its settings are the writer's own: it never goes back to the pool.
            conn.invalidate()
            conn.close()
