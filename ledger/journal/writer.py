"""The journal's writer: the transaction around many `post` calls (group commit).

Requests -- a ledger service and its arguments -- queue to the writer of their database,
which takes every request waiting into one transaction and one commit, then answers each.
A charge therefore costs its own statements and a share of one commit; while a batch runs,
the next one gathers, so the busier the service the bigger the batch, with no timer and
no added wait. Requests run in arrival order (on PostgreSQL, ordered by account within a
batch), each seeing the ones before it exactly as if they had queued one by one: a batch
refuses exactly what one transaction per request refuses.

Answers: a request's result, or the `LedgerError` it raised (an answer such as "unknown
agent"; nothing it wrote stays: a request that may raise one after writing runs in a
savepoint). Any other error -- a database error, a bug -- rolls the batch back, and each
request runs again alone in its own transaction (`ledger.db.transaction`, with its
retries), so one bad request never costs another its answer.

Where a batch runs depends on the database, and no request hops threads:
- SQLite: on the event loop the requests came from, between two turns of it. Statements
  take microseconds and never wait on a network, so a writer thread would only add two
  thread wake-ups and a contended GIL to every batch (measured: docs/performance.md). The
  loop never blocks on the database: the writer's connection does not wait for SQLite's
  lock (a busy database is retried a moment later) and does not checkpoint on commit
  (ledger/journal/checkpoints.py does, in the background).
- PostgreSQL: on one writer thread per stripe of accounts (statements wait on round trips
  and commits on the WAL flush); the thread wakes each event loop once per batch. A batch
  locks its accounts in ascending id order, so batches of several processes (`creditbot
  serve --workers N`, replicas) never deadlock on each other.

Blocking callers (scripts, benchmarks, tests) use `call`; on SQLite their batches run on a
loop the writer keeps for them.

Request ids (ledger/tracing.py): a request keeps the id current where it was made, and runs
with it, so the journal entries, outbox rows and log lines of each request in a shared
transaction carry its own id, whichever loop or thread runs the batch. `on_batch` is told
the size of every transaction the writer commits (a metric, bot/metrics.py).

Why one module of ~500 lines: the SQLite and PostgreSQL runners share the batch, its
answers and its rerun-alone path, and their differences are the point of this page.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ledger.db import make_session_factory, transaction
from ledger.errors import LedgerError
from ledger.journal.checkpoints import Checkpointer
from ledger.tracing import current_request_id, request_id_var

#: Most requests one transaction takes: a bound on the time one batch holds its locks.
MAX_BATCH = 128
#: Seconds without a request after which a writer lets go of its connection (and thread).
IDLE_SECONDS = 2.0
#: PostgreSQL: writer threads, each with its connection; an account always uses the same.
STRIPES = 4


class Request:
    """One piece of work for the writer: `service(session, *args, **kwargs)`.

    `savepoint=False` says the service raises a `LedgerError` only before it writes (a
    charge decides before it posts), or only reads: it then runs without a savepoint of its
    own, which on PostgreSQL saves two round trips. Any other service runs in a savepoint,
    so an error it raises after writing takes back what it wrote and nothing else.
    `order` is the account it works on: it picks the PostgreSQL stripe and the order of
    the batch there.
    """

    __slots__ = ("service", "args", "kwargs", "savepoint", "order", "loop", "future", "done")
    __slots__ += ("result", "error", "request_id")

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
        self.request_id = current_request_id()

    def __call__(self, session: Session) -> Any:
        # The batch runs in the context of whichever request started it: set this one's id.
        token = request_id_var.set(self.request_id)
        try:
            return self.service(session, *self.args, **self.kwargs)
        finally:
            request_id_var.reset(token)


class JournalWriter:
    """The writer of one database (see the module's docstring)."""

    def __init__(
        self,
        engine: Engine,
        *,
        stripes: int = STRIPES,
        max_batch: int = MAX_BATCH,
        idle: float = IDLE_SECONDS,
        on_batch: Callable[[int], object] | None = None,
    ) -> None:
        """`on_batch(n)`: called with the number of requests of each transaction committed
        (a batch rerun request by request: 1 for each)."""
        batches = _Batches(engine, max_batch, on_batch)
        self.on_loop = engine.dialect.name == "sqlite"
        self._sqlite = _SqliteConnection(batches, idle) if self.on_loop else None
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _OnLoop]
        self._loops = weakref.WeakKeyDictionary()
        self._stripes = [] if self.on_loop else [_Stripe(batches, idle) for _ in range(stripes)]
        self._own_loop: asyncio.AbstractEventLoop | None = None
        self._starting = threading.Lock()

    async def run(self, request: Request) -> Any:
        """The request's result once its batch committed (or the error it raised)."""
        loop = asyncio.get_running_loop()
        request.loop, request.future = loop, loop.create_future()
        if self._sqlite is not None:
            on_loop = self._loops.get(loop)
            if on_loop is None:
                on_loop = self._loops[loop] = _OnLoop(self._sqlite)
            on_loop.add(loop, request)
        else:
            self._stripes[request.order % len(self._stripes)].put(request)
        return await request.future

    def call(self, request: Request) -> Any:
        """As `run`, for a caller that blocks (a thread of its own, a script)."""
        if self._sqlite is not None:
            return asyncio.run_coroutine_threadsafe(self.run(request), self._loop()).result()
        request.done = threading.Lock()
        request.done.acquire()
        self._stripes[request.order % len(self._stripes)].put(request)
        request.done.acquire()
        if request.error is not None:
            raise request.error
        return request.result

    def waiting(self) -> int:
        """How many requests wait for a batch (not counting the ones running)."""
        on_loops = sum(len(on_loop.pending) for on_loop in list(self._loops.values()))
        return on_loops + sum(stripe.waiting() for stripe in self._stripes)

    def close(self) -> None:
        """Finish what is queued and let go of threads and connections (they come back if
        asked)."""
        for stripe in self._stripes:
            stripe.close()
        with self._starting:
            loop, self._own_loop = self._own_loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if self._sqlite is not None:
            self._sqlite.close()

    def _loop(self) -> asyncio.AbstractEventLoop:
        """The loop that runs the batches of blocking callers (SQLite)."""
        with self._starting:
            if self._own_loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="journal-writer", daemon=True
                ).start()
                self._own_loop = loop
            return self._own_loop


class _Batches:
    """Runs a batch of requests in one transaction on a given connection."""

    def __init__(
        self, engine: Engine, max_batch: int, on_batch: Callable[[int], object] | None
    ) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = make_session_factory(engine)
        self.max = max_batch
        self.ordered = engine.dialect.name != "sqlite"
        self.on_batch = on_batch

    def run(self, conn: Connection, batch: list[Request]) -> bool:
        """Run the batch; True when its outcome stands. False: the connection failed (the
        batch has been answered one by one and the connection must be dropped). Raises
        `Busy` without running anything when SQLite's write lock is taken."""
        if self.ordered:
            batch.sort(key=_order)  # stable: one account's requests keep their order
        try:
            if self._in_one_transaction(conn, batch):
                if self.on_batch is not None:
                    self.on_batch(len(batch))
                return True
            broken = False
        except Busy:
            raise
        except Exception:  # noqa: BLE001 - the batch is rolled back; each runs again alone
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

    def _in_one_transaction(self, conn: Connection, batch: list[Request]) -> bool:
        """Run the batch and commit it. False (rolled back) when a request that promised to
        raise only before writing wrote and then raised."""
        session = Session(bind=conn, expire_on_commit=False)
        try:
            with session.begin():
                try:
                    session.connection()  # BEGIN (IMMEDIATE on SQLite: the write lock)
                except OperationalError as exc:
                    if _busy(exc):
                        raise Busy from exc
                    raise
                # SQLite counts the rows each request changed, so a broken promise (an
                # error after writing, without a savepoint) is caught there; elsewhere 0.
                raw = conn.connection.dbapi_connection
                counted = hasattr(raw, "total_changes")
                changes = raw.total_changes if counted else 0  # type: ignore[union-attr]
                for request in batch:
                    try:
                        if request.savepoint:
                            with session.begin_nested():
                                request.result = request(session)
                        else:
                            request.result = request(session)
                    except LedgerError as exc:
                        if counted and raw.total_changes != changes:  # type: ignore[union-attr]
                            if not request.savepoint:
                                raise _BrokenPromise from exc
                        request.error = exc
                    if counted:
                        changes = raw.total_changes  # type: ignore[union-attr]
            return True
        except _BrokenPromise:
            return False
        finally:
            session.close()


class Busy(Exception):
    """SQLite's write lock is held by another connection: try the batch again shortly."""


class _BrokenPromise(Exception):
    """A request run without a savepoint raised after writing: roll the batch back."""


class _OnLoop:
    """SQLite: the requests of one event loop, run in a batch between two of its turns."""

    def __init__(self, sqlite: _SqliteConnection) -> None:
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
        _settle(batch)
        if self.pending:
            self._scheduled = True
            loop.call_soon(self._flush, loop)


class _SqliteConnection:
    """SQLite: the one connection the batches of every event loop run on, taken without
    waiting (`Busy` when another batch, or another connection, holds the write lock)."""

    def __init__(self, batches: _Batches, idle: float) -> None:
        self.batches = batches
        self._idle = idle
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._last = 0.0
        database = batches.engine.url.database
        on_disk = database not in (None, "", ":memory:")
        self._checkpointer = Checkpointer(batches.engine, self._close_if_idle) if on_disk else None

    def run(self, batch: list[Request]) -> None:
        if not self._lock.acquire(blocking=False):
            raise Busy
        try:
            try:
                conn = self._connection()
            except Exception:  # noqa: BLE001 - no database to talk to
                self.batches.alone(batch)  # each request gets the error it would alone
                return
            if not self.batches.run(conn, batch):
                self._disconnect()
        finally:
            self._last = time.monotonic()
            self._lock.release()

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self.batches.engine.connect()
            raw = conn.connection.dbapi_connection
            assert raw is not None
            # Never wait for the lock on the loop (Busy instead), and leave checkpoints to
            # the checkpointer: a commit here never writes the database file or fsyncs.
            raw.execute("PRAGMA busy_timeout=0")
            if self._checkpointer is not None:
                raw.execute("PRAGMA wal_autocheckpoint=0")
                self._checkpointer.start()
            self._conn = conn
        return self._conn

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
        conn, self._conn = self._conn, None
        if conn is not None:
            # Its settings are the writer's own: it never goes back to the pool.
            conn.invalidate()
            conn.close()


class _Stripe:
    """PostgreSQL: one writer thread, its queue and its connection."""

    def __init__(self, batches: _Batches, idle: float) -> None:
        self._batches = batches
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

    def waiting(self) -> int:
        return self._queue.qsize()

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
                while len(batch) < self._batches.max:
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
        if self._conn is None:
            try:
                self._conn = self._batches.engine.connect()
            except Exception:  # noqa: BLE001 - no database to talk to
                # Each request gets the error it would alone (a 503 at the edge); the
                # next batch tries to connect again.
                self._batches.alone(batch)
                return
        if not self._batches.run(self._conn, batch):
            self._disconnect()

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a broken connection is discarded by the pool
                pass


def _order(request: Request) -> int:
    return request.order


def _busy(exc: BaseException) -> bool:
    return "locked" in str(exc).lower() or "busy" in str(exc).lower()


def _answer(batch: list[Request]) -> None:
    """From a writer thread: answer blocking callers at once, and each event loop with one
    wake-up for all of its requests."""
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
