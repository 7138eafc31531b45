"""The journal writer's batch: its requests in one transaction and one commit, each
answered as if it had run alone (ledger/journal/writer.py says how and why).

Split from the writer: the runners (ledger/journal/_sqlite_runner.py on the event loop,
ledger/journal/_stripes.py on PostgreSQL's writer threads) decide where a batch runs; this
is what runs it, and its rerun-alone path.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ledger.db import make_session_factory, transaction
from ledger.errors import LedgerError
from ledger.journal import batch as journal_batch
from ledger.journal._driver import BEGIN, COMMITTED, CONNECTION

if TYPE_CHECKING:
    from ledger.journal.writer import Request


class Batches:
    """Runs a batch of requests in one transaction on a given connection."""

    def __init__(
        self, engine: Engine, max_batch: int, on_batch: Callable[[int], object] | None
    ) -> None:
        self.engine = engine
        journal_batch.watch(engine)
        self.sessions: sessionmaker[Session] = make_session_factory(engine)
        self.max = max_batch
        self.ordered = engine.dialect.name != "sqlite"
        self.on_batch = on_batch

    def session(self, conn: Connection) -> Session:
        """The session every batch on `conn` runs in, made once per connection: building a
        session and its transaction for each batch cost more than a charge's statements.
        Each batch begins and commits on the connection itself; the session joins that
        transaction only when a request uses it (ORM work, a savepoint)."""
        return Session(bind=conn, expire_on_commit=False)

    def run(self, session: Session, batch: list[Request]) -> bool:
        """Run the batch in the connection's session (`session`); True when its outcome
        stands. False: the connection failed (the batch has been answered one by one and
        the connection must be dropped). Raises
        `Busy` without running anything when SQLite's write lock is taken."""
        if self.ordered:
            batch.sort(key=order)  # stable: one account's requests keep their order
        try:
            if self._in_one_transaction(session, batch):
                if self.on_batch is not None:
                    self.on_batch(len(batch))
                return True
            broken = False
        except Busy:
            raise
        except journal_batch.RunAlone:  # rolled back; the connection is sound
            broken = False
        except Exception as exc:  # noqa: BLE001 - the batch is rolled back; each runs again alone
            if session.bind is not None and session.bind.info.pop(COMMITTED, False):  # type: ignore[union-attr]
                # A bug after the batch committed: what it wrote stands, so nothing of it
                # may run again (that would charge twice). Each request gets the error.
                for request in batch:
                    request.error = exc
                return False
            broken = True
        self.alone(batch)
        return not broken

    def alone(self, batch: list[Request]) -> None:
        """Run each request in a transaction of its own (`ledger.db.transaction`, with its
        retries): each gets the answer or the error it would have got on its own."""
        for request in batch:
            request.result = request.error = None
            try:
                request.result = transaction(self.sessions, request)
            except BaseException as exc:  # noqa: BLE001 - the request's own answer
                request.error = exc
            else:
                if self.on_batch is not None:
                    self.on_batch(1)

    def _in_one_transaction(self, session: Session, batch: list[Request]) -> bool:
        """Run the batch and commit it. False (rolled back) when a request that promised to
        raise only before writing wrote and then raised."""
        conn = session.info[CONNECTION] = cast(Connection, session.bind)
        conn.info.pop(COMMITTED, None)
        try:
            transaction = conn.begin()  # BEGIN (IMMEDIATE on SQLite: the write lock)
        except (OperationalError, sqlite3.OperationalError) as exc:
            session.info.clear()
            if busy(exc):
                raise Busy from exc
            raise
        if self.ordered:
            # PostgreSQL: the BEGIN goes with the batch's first statement (_driver.BEGIN).
            conn.info[BEGIN] = True
        try:
            # The batch holds its accounts: their charges write their rows once, at the end.
            held = journal_batch.begin(
                conn,
                [request.order for request in batch],
                [request.kwargs.get("idempotency_key") for request in batch],
            )
            # SQLite counts the rows each request changed (less what the batch wrote out
            # for the requests before it), so a broken promise (an error after writing,
            # without a savepoint) is caught there; elsewhere 0.
            raw = conn.connection.dbapi_connection
            counted = hasattr(raw, "total_changes")
            changes = raw.total_changes if counted else 0  # type: ignore[union-attr]
            for request in batch:
                try:
                    if request.savepoint:
                        with session.begin_nested():
                            # SAVEPOINT now: the session would send it only when asked
                            # for its connection, which a charge does not do.
                            session.connection()
                            request.result = request(session)
                    else:
                        request.result = request(session)
                except LedgerError as exc:
                    if counted and raw.total_changes - held.flushed != changes:  # type: ignore[union-attr]
                        if not request.savepoint:
                            raise _BrokenPromise from exc
                    request.error = exc
                if counted:
                    changes = raw.total_changes - held.flushed  # type: ignore[union-attr]
            # What the requests added to the session (outbox rows, ...): any statement
            # first writes what the batch holds pending (`journal_batch.flush_pending`).
            session.flush()
            # The rest of what it holds; on PostgreSQL with the COMMIT (`Batch.flush`).
            journal_batch.end(conn, commit=True)
            transaction.commit()  # the driver sends COMMIT unless it went already
            return True
        except _BrokenPromise:
            return False
        finally:
            conn.info.pop(BEGIN, None)
            journal_batch.end(conn, commit=False)
            # Forget what the batch loaded and noted (a key cache's revocation count is
            # read again by the next batch): the session is the connection's, reused.
            session.close()
            session.info.clear()
            if transaction.is_active:
                transaction.rollback()


class Busy(Exception):
    """SQLite's write lock is held by another connection: try the batch again shortly."""


class _BrokenPromise(Exception):
    """A request run without a savepoint raised after writing: roll the batch back."""


def order(request: Request) -> int:
    return request.order


def busy(exc: BaseException) -> bool:
    return "locked" in str(exc).lower() or "busy" in str(exc).lower()


def settle(requests: list[Request]) -> None:
    for request in requests:
        future = request.future
        if future is None or future.done():
            continue
        if request.error is not None:
            future.set_exception(request.error)
        else:
            future.set_result(request.result)
