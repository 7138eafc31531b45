"""The journal's writer: the transaction around many `post` calls (group commit).

Requests -- a ledger service and its arguments -- queue to one writer thread per database
(on PostgreSQL, per stripe of accounts). The writer takes every request waiting into one
transaction and one commit, then answers each. A charge therefore costs its statements
and a share of one commit, and while the writer commits, the next batch gathers: the
busier the service, the bigger the batch, with no timer and no added wait. Requests are
served in arrival order, each seeing the ones before it exactly as if they had queued one
by one (so a batch refuses exactly what one-at-a-time transactions refuse).

Answers: a request's result, or the `LedgerError` it raised (an answer such as "unknown
agent", which changes nothing: a request that may raise one after writing runs in a
savepoint, rolled back alone). Any other error -- a database error, a bug -- rolls the
batch back, and each request runs again alone in its own transaction (with
`ledger.db.transaction`'s retries), so one bad request never costs another its answer.

Asyncio callers `await writer.run(...)`: no thread hop per request; the writer wakes each
event loop once per batch. Blocking callers use `writer.call(...)`.

Between processes (`creditbot serve --workers N`, replicas): on SQLite a batch holds an
flock next to the database file, so the writers of several processes take turns in order
instead of polling SQLite's busy handler. On PostgreSQL a batch locks its accounts in
ascending id order, so two processes' batches never deadlock on each other.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from ledger.db import make_session_factory, transaction
from ledger.errors import LedgerError

T = TypeVar("T")

#: Most requests one transaction takes: a bound on the time one batch holds its locks.
MAX_BATCH = 128
#: Seconds a writer waits for work before it closes its connection and its thread ends.
IDLE_SECONDS = 2.0


class Request:
    """One piece of work for the writer: `service(session, *args, **kwargs)`.

    `savepoint=False` says the service raises a `LedgerError` only before it writes (a
    charge decides before it posts): it then runs without a savepoint of its own, which on
    PostgreSQL saves two round trips. Any other service runs in a savepoint, so an error
    it raises after writing takes back what it wrote and nothing else.
    `order` is the account it works on: a batch runs its requests in ascending order (on
    PostgreSQL, where that order prevents deadlocks), and it picks the stripe.
    """

    __slots__ = ("service", "args", "kwargs", "savepoint", "order", "loop", "future", "done")
    __slots__ += ("result", "error")

    def __init__(
        self,
        service: Callable[..., Any],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        savepoint: bool = True,
        order: int = 0,
    ) -> None:
        self.service, self.args, self.kwargs = service, args, kwargs or {}
        self.savepoint = savepoint
        self.order = order
        self.loop: asyncio.AbstractEventLoop | None = None
        self.future: asyncio.Future[Any] | None = None
        self.done: threading.Lock | None = None
        self.result: Any = None
        self.error: BaseException | None = None

    def __call__(self, session: Session) -> Any:
        return self.service(session, *self.args, **self.kwargs)


class JournalWriter:
    """The writer threads of one database. Threads start with the first request and end
    after `idle` seconds without one (closing their connection)."""

    def __init__(
        self,
        engine: Engine,
        *,
        stripes: int | None = None,
        max_batch: int = MAX_BATCH,
        idle: float = IDLE_SECONDS,
    ) -> None:
        self._engine = engine
        self._sessions = make_session_factory(engine)
        sqlite = engine.dialect.name == "sqlite"
        self.stripes = 1 if sqlite else (stripes or 4)
        database = engine.url.database if sqlite else None
        lock_path = f"{database}.writer-lock" if database and database != ":memory:" else None
        self._stripes = [
            _Stripe(self._sessions, engine, lock_path, max_batch, idle, ordered=not sqlite)
            for _ in range(self.stripes)
        ]

    async def run(self, request: Request) -> Any:
        """The request's result once its batch committed (or the error it raised)."""
        loop = asyncio.get_running_loop()
        request.loop, request.future = loop, loop.create_future()
        self._stripes[request.order % self.stripes].put(request)
        return await request.future

    def call(self, request: Request) -> Any:
        """As `run`, for a caller that blocks (a thread of its own, a script)."""
        request.done = threading.Lock()
        request.done.acquire()
        self._stripes[request.order % self.stripes].put(request)
        request.done.acquire()
        if request.error is not None:
            raise request.error
        return request.result

    def close(self) -> None:
        """Finish what is queued and stop the threads (they start again if asked)."""
        for stripe in self._stripes:
            stripe.close()


class _Stripe:
    """One writer thread, its queue and its connection."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        engine: Engine,
        lock_path: str | None,
        max_batch: int,
        idle: float,
        *,
        ordered: bool,
    ) -> None:
        self._sessions = sessions
        self._ordered = ordered
        self._engine = engine
        self._lock_path = lock_path
        self._lock_fd: int | None = None
        self._max = max_batch
        self._idle = idle
        self._queue: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self._conn: Connection | None = None

    def put(self, request: Request) -> None:
        self._queue.put(request)
        # Under the lock the thread also takes to decide it is idle: either it sees this
        # request, or this sees that it ended and starts another.
        with self._starting:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="journal-writer", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        with self._starting:
            thread = self._thread
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(timeout=30)

    def _serve(self) -> None:
        try:
            while True:
                try:
                    first = self._queue.get(timeout=self._idle)
                except queue.Empty:
                    with self._starting:
                        if self._queue.empty():
                            self._thread = None
                            return
                    continue
                if first is None:
                    with self._starting:
                        self._thread = None
                    return
                batch = [first]
                while len(batch) < self._max:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        self._queue.put(None)  # stop after this batch
                        break
                    batch.append(more)
                self._run(batch)
                _answer(batch)
        finally:
            self._disconnect()

    def _run(self, batch: list[Request]) -> None:
        """The batch in one transaction; if that fails, each request alone."""
        if self._ordered:
            batch.sort(key=_order)  # stable: one account's requests keep their order
        try:
            self._lock()
            try:
                if self._in_one_transaction(batch):
                    return
            finally:
                self._unlock()
        except Exception:  # noqa: BLE001 - the batch is rolled back; each runs again alone
            self._disconnect()
        for request in batch:
            request.result = request.error = None
            try:
                request.result = transaction(self._sessions, request)
            except BaseException as exc:  # noqa: BLE001 - the request's own answer
                request.error = exc

    def _in_one_transaction(self, batch: list[Request]) -> bool:
        """Run the batch and commit it. False (rolled back) when a request that promised to
        raise only before writing wrote and then raised."""
        if self._conn is None:
            self._conn = self._engine.connect()
        conn = self._conn
        session = Session(bind=conn, expire_on_commit=False)
        try:
            with session.begin():
                changes = _changes(conn)
                for request in batch:
                    try:
                        if request.savepoint:
                            with session.begin_nested():
                                request.result = request(session)
                        else:
                            request.result = request(session)
                    except LedgerError as exc:
                        after = _changes(conn)
                        if not request.savepoint and after != changes:
                            raise _BrokenPromise from exc
                        request.error = exc
                    changes = _changes(conn)
            return True
        except _BrokenPromise:
            return False
        finally:
            session.close()

    def _lock(self) -> None:
        if self._lock_path is None:
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a broken connection is discarded by the pool
                pass
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


class _BrokenPromise(Exception):
    """A request run without a savepoint raised after writing: roll the batch back."""


def _order(request: Request) -> int:
    return request.order


def _changes(conn: Connection) -> int:
    """Rows changed so far on this connection (SQLite counts them for free; elsewhere 0)."""
    return getattr(conn.connection.driver_connection, "total_changes", 0)


def _answer(batch: list[Request]) -> None:
    """Answer every request of the batch: blocking callers at once, each event loop with
    one wake-up for all of its requests."""
    loops: dict[asyncio.AbstractEventLoop, list[Request]] = {}
    for request in batch:
        if request.loop is not None:
            loops.setdefault(request.loop, []).append(request)
        elif request.done is not None:
            request.done.release()
    for loop, requests in loops.items():
        try:
            loop.call_soon_threadsafe(_settle, requests)
        except RuntimeError:  # the loop closed: nobody is waiting any more
            pass


def _settle(requests: list[Request]) -> None:
    for request in requests:
        future = request.future
        if future is None or future.done():
            continue
        if request.error is not None:
            future.set_exception(request.error)
        else:
            future.set_result(request.result)
