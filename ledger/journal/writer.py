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

Modules: this one holds the writer and its requests; the batch, its answers and its
rerun-alone path are ledger/journal/_batches.py (what a batch keeps in memory across its
charges, ledger/journal/batch.py); the runners are ledger/journal/_sqlite_runner.py and
ledger/journal/_stripes.py.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ledger.journal._batches import Batches, Busy
from ledger.journal._sqlite_runner import OnLoop, SqliteConnection
from ledger.journal._stripes import Stripe
from ledger.tracing import current_request_id, request_id_var

#: Most requests one transaction takes: a bound on the time one batch holds its locks.
MAX_BATCH = 128
#: Seconds without a request after which a writer lets go of its connection (and thread).
IDLE_SECONDS = 2.0
#: PostgreSQL: writer threads, each with its connection; an account always uses the same.
#: A batch costs two round trips whatever its size (ledger/journal/batch.py), so fewer,
#: larger batches cost less CPU a charge (32 callers on 32 accounts: 141 us with 2, 202 us
#: with 4); a second stripe keeps an account another process holds locked from stalling
#: every other account's charges.
STRIPES = 2


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
        batches = Batches(engine, max_batch, on_batch)
        self.on_loop = engine.dialect.name == "sqlite"
        self._sqlite = SqliteConnection(batches, idle) if self.on_loop else None
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, OnLoop]
        self._loops = weakref.WeakKeyDictionary()
        self._stripes = [] if self.on_loop else [Stripe(batches, idle) for _ in range(stripes)]
        self._own_loop: asyncio.AbstractEventLoop | None = None
        self._starting = threading.Lock()

    async def run(self, request: Request) -> Any:
        """The request's result once its batch committed (or the error it raised)."""
        loop = asyncio.get_running_loop()
        request.loop, request.future = loop, loop.create_future()
        if self._sqlite is not None:
            on_loop = self._loops.get(loop)
            if on_loop is None:
                on_loop = self._loops[loop] = OnLoop(self._sqlite)
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


__all__ = ["Busy", "JournalWriter", "Request"]
