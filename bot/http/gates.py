"""Queues in front of the ledger for API requests, so contended work is served in order.

Charges of one account are serialised by the database anyway (SQLite has one writer; on
PostgreSQL every charge locks its account row). Left to the database, waiters are woken in
no particular order: SQLite's busy handler polls with sleeps of up to 100 ms, and dozens of
PostgreSQL connections queued on one row make some requests wait many times longer than
others. Queueing them first, in arrival order, in the process gives the same throughput
with a much shorter tail (measured by bench/api_charge.py).
"""

from __future__ import annotations

import collections
import fcntl
import hashlib
import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot import metrics
from ledger.db import transaction


class FifoLock:
    """A lock handed to its waiters in the order they arrived."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._busy = False
        self._waiters: collections.deque[threading.Lock] = collections.deque()

    def acquire(self) -> None:
        with self._mutex:
            if not self._busy:
                self._busy = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        turn.acquire()  # released by the holder before us, which hands the lock over

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._busy = False

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class SqliteWriterGate:
    """One API transaction at a time on a SQLite file, across threads (in arrival order)
    and across `--workers` processes (an flock of `<database>.api-lock`, which wakes the
    next process as soon as it is free). Other writers (CLI, scheduler) still meet SQLite's
    own busy handling."""

    def __init__(self, database: str | None) -> None:
        self._queue = FifoLock()
        self._path = f"{database}.api-lock" if database and database != ":memory:" else None
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._queue.acquire()
        try:
            if self._path is not None:
                if self._fd is None:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._queue.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._queue.release()


class Gates:
    """The gate a request waits at, chosen by its API key.

    SQLite: one gate for everything. PostgreSQL: one of `stripes` FIFO locks picked by the
    key, so requests of one account queue in order while other accounts run in parallel
    (a bounded set: any number of keys, even made-up ones, share the stripes).
    """

    def __init__(
        self,
        engine: Engine,
        stripes: int = 64,
        *,
        sessions: sessionmaker[Session] | None = None,
        safe: tuple[type[BaseException], ...] = (),
    ) -> None:
        self._groups: list[GroupCommit] = []
        if engine.url.get_backend_name() == "sqlite":
            self._single: AbstractContextManager[Any] | None = SqliteWriterGate(engine.url.database)
            self._stripes: list[FifoLock] = []
        else:
            self._single = None
            self._stripes = [FifoLock() for _ in range(stripes)]
            if sessions is not None:
                self._groups = [GroupCommit(sessions, safe) for _ in range(stripes)]

    def _stripe(self, token: str) -> int:
        digest = hashlib.blake2b(token.encode("utf-8", "replace"), digest_size=8).digest()
        return int.from_bytes(digest, "big") % len(self._stripes)

    def for_key(self, token: str) -> AbstractContextManager[Any]:
        if self._single is not None:
            return self._single
        return self._stripes[self._stripe(token)]

    def group_for_key(self, token: str) -> GroupCommit | None:
        """Where a key's charges are committed together (PostgreSQL), or None (SQLite,
        whose commits are cheap: there the gate alone orders them)."""
        return self._groups[self._stripe(token)] if self._groups else None


class _Queued:
    __slots__ = ("work", "finished", "result", "error")

    def __init__(self, work: Callable[[Session], Any]) -> None:
        self.work = work
        self.finished = False
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommit:
    """PostgreSQL: charges waiting for one account run together in one transaction, so one
    durable commit pays for all of them (group commit).

    Otherwise a charge on a busy account holds the account's row lock through its own WAL
    flush and the next one waits for it: one charge per flush. In a batch each piece of
    work sees the ones before it, exactly as if they had queued one by one. `safe`
    exceptions are answers the work raises before it writes anything (bad input, unknown
    agent, a refused key); any other error rolls the batch back and each piece runs again
    in its own transaction, so one bad request never costs another its answer.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        safe: tuple[type[BaseException], ...],
        max_batch: int = 64,
    ) -> None:
        self._sessions = sessions
        self._safe = safe
        self._max = max_batch
        self._cond = threading.Condition()
        self._queue: collections.deque[_Queued] = collections.deque()
        self._busy = False

    def transact(self, work: Callable[[Session], Any]) -> Any:
        """`work(session)` in the transaction of the batch it joins: its result, or its error."""
        item = _Queued(work)
        with self._cond:
            self._queue.append(item)
            while True:
                while self._busy and not item.finished:
                    self._cond.wait()
                if item.finished:
                    break
                # Nobody is running a batch: this thread runs the oldest waiting work.
                self._busy = True
                batch = [self._queue.popleft() for _ in range(min(self._max, len(self._queue)))]
                self._cond.release()
                try:
                    self._run_batch(batch)
                finally:
                    self._cond.acquire()
                    for done in batch:
                        done.finished = True
                    self._busy = False
                    self._cond.notify_all()
        if item.error is not None:
            raise item.error
        return item.result

    def _run_batch(self, batch: list[_Queued]) -> None:
        metrics.BATCH_SIZE.observe(len(batch))
        session = self._sessions()
        try:
            with session.begin():
                for item in batch:
                    try:
                        item.result = item.work(session)
                    except self._safe as exc:
                        item.error = exc
            return
        except BaseException:  # noqa: BLE001 - rolled back: each runs again on its own
            pass
        finally:
            session.close()
        for item in batch:
            item.result = item.error = None
            try:
                item.result = transaction(self._sessions, item.work)
            except BaseException as exc:  # noqa: BLE001 - the request's own answer
                item.error = exc
