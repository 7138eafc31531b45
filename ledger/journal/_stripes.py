"""PostgreSQL: the journal writer's batches run on one writer thread per stripe of
accounts, each with its queue and its connection (ledger/journal/writer.py says why)."""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import TYPE_CHECKING

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from ledger.journal._batches import Batches, settle

if TYPE_CHECKING:
    from ledger.journal.writer import Request


class Stripe:
    """PostgreSQL: one writer thread, its queue and its connection."""

    def __init__(self, batches: Batches, idle: float) -> None:
        self._batches = batches
        self._idle = idle
        self._queue: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self._conn: Connection | None = None
        self._session: Session | None = None

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
                answer(batch)
        finally:
            self._disconnect()

    def _run(self, batch: list[Request]) -> None:
        if self._session is None:
            try:
                self._conn = self._batches.engine.connect()
            except Exception:  # noqa: BLE001 - no database to talk to
                # Each request gets the error it would alone (a 503 at the edge); the
                # next batch tries to connect again.
                self._batches.alone(batch)
                return
            # The batches send their own BEGIN and COMMIT (ledger/journal/_driver.BEGIN).
            self._conn.connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
            self._session = self._batches.session(self._conn)
        if not self._batches.run(self._session, batch):
            self._disconnect()

    def _disconnect(self) -> None:
        conn, self._conn, self._session = self._conn, None, None
        if conn is not None:
            try:
                # In the driver's autocommit mode: it never goes back to the pool.
                conn.invalidate()
                conn.close()
            except Exception:  # noqa: BLE001 - a broken connection is discarded by the pool
                pass


def answer(batch: list[Request]) -> None:
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
            loop.call_soon_threadsafe(settle, requests)
        except RuntimeError:  # the loop closed: nobody is waiting any more
            pass
