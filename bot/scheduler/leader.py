"""Who runs the scheduler's jobs: exactly one process at a time.

- PostgreSQL: every replica schedules the jobs, but a run only goes ahead in the process
  that holds a session-level advisory lock (`pg_try_advisory_lock`) on a dedicated
  connection. The lock is re-checked before each run. When the leader dies its connection
  drops, PostgreSQL releases the lock, and the next tick of another replica takes it.
- SQLite: one process. An exclusive `flock` on a file beside the database makes a second
  scheduler on the same file wait as a follower instead of running jobs too.
- An in-memory SQLite database belongs to one process: it always leads.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

log = logging.getLogger("creditbot.scheduler")

#: The advisory lock's key: "creditbt" in ASCII, one 64-bit number all replicas agree on.
LOCK_KEY = int.from_bytes(b"creditbt", "big")
#: The row of `scheduler_leaders` the leader writes.
LEADER_NAME = "scheduler"
#: How often the leader writes its heartbeat row (the lock itself needs no heartbeat).
HEARTBEAT = timedelta(seconds=30)


def runner_id() -> str:
    """This process, as people see it in `creditbot jobs`: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Leadership(Protocol):
    """Decides whether this process may run jobs now."""

    def check(self) -> bool:
        """True if this process leads: confirm a held lock, or try to take a free one."""
        ...

    def release(self) -> None:
        """Give the lock up (on shutdown)."""
        ...

    def describe(self) -> str: ...


_HELD_SQL = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND pid = pg_backend_pid() AND objsubid = 1"
    " AND ((classid::bigint << 32) | objid::bigint) = :key"
)


class PostgresLeader:
    """A session-level advisory lock held on a connection of its own (not from the pool,
    never in a transaction). Whoever holds the lock leads; the lock lives as long as the
    connection, so a leader that dies (process killed, host gone, connection cut) frees it
    for another replica without waiting for any lease to run out."""

    def __init__(self, engine: Engine, key: int = LOCK_KEY) -> None:
        url = engine.url
        connect_args: dict[str, object] = {}
        if url.get_backend_name() == "postgresql":
            # Notice a half-open connection to a vanished server within about half a minute.
            connect_args = {
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
                "application_name": "creditbot-scheduler",
            }
        self._engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
        self._key = key
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self.is_leader = False
        self.backend_pid: int | None = None

    def check(self) -> bool:
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT"
                    )
                    self.backend_pid = self._conn.execute(text("SELECT pg_backend_pid()")).scalar()
                if self.is_leader:
                    if self._conn.execute(_HELD_SQL, {"key": self._key}).scalar():
                        return True
                    log.warning("scheduler lost its leader lock")
                    self.is_leader = False
                got = self._conn.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
                ).scalar()
                if got:
                    log.info("scheduler took the leader lock (backend %s)", self.backend_pid)
                self.is_leader = bool(got)
            except DBAPIError as exc:
                if self.is_leader:
                    log.warning("scheduler lost its leader connection: %s", exc)
                self._drop()
            return self.is_leader

    def _drop(self) -> None:
        self.is_leader = False
        self.backend_pid = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.invalidate()
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    def release(self) -> None:
        with self._lock:
            if self._conn is not None and self.is_leader:
                with contextlib.suppress(Exception):
                    self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
            self._conn = None
            self.is_leader = False
        self._engine.dispose()

    def describe(self) -> str:
        return f"PostgreSQL advisory lock {self._key}"


class FileLeader:
    """An exclusive, non-blocking `flock` on a file beside the SQLite database. The kernel
    frees it when the process dies. It only guards processes of one machine, which is where
    a SQLite file lives."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._lock = threading.Lock()

    @property
    def is_leader(self) -> bool:
        return self._fd is not None

    def check(self) -> bool:
        with self._lock:
            if self._fd is not None:
                return True
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            os.ftruncate(fd, 0)
            os.write(fd, f"{runner_id()}\n".encode())
            self._fd = fd
            log.info("scheduler took the lock file %s", self.path)
            return True

    def release(self) -> None:
        with self._lock:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None

    def describe(self) -> str:
        return f"lock file {self.path}"


class SoloLeader:
    """Always the leader: an in-memory SQLite database belongs to this process alone."""

    is_leader = True

    def check(self) -> bool:
        return True

    def release(self) -> None:
        return None

    def describe(self) -> str:
        return "single process"


def make_leader(engine: Engine) -> Leadership:
    """The leadership that fits the database: advisory lock, lock file, or none needed."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        return PostgresLeader(engine)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return FileLeader(f"{url.database}.scheduler.lock")
    return SoloLeader()
