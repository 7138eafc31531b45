"""Engines, sessions and the unit of work, for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///creditbot.db"
T = TypeVar("T")


def normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// and use psycopg 3 for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str = DEFAULT_URL, **kwargs: Any) -> Engine:
    """An engine for `url`. SQLite gets WAL, foreign keys and writer transactions that take
    the write lock at BEGIN, so two charges can never read the same balance and both debit it."""
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            if make_url(url).database not in (None, "", ":memory:"):
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Straight to the driver: this runs once per transaction, on the hot path.
            conn.connection.driver_connection.execute("BEGIN IMMEDIATE")

        return engine
    # Enough kept-open connections for the server's thread pool (40 threads): connections
    # over pool_size are closed on return, and reopening one per request costs milliseconds.
    kwargs.setdefault("pool_size", 32)
    kwargs.setdefault("max_overflow", 8)
    kwargs.setdefault("pool_pre_ping", False)
    return create_engine(url, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (results are read after it)."""
    return sessionmaker(engine, expire_on_commit=False)


def _retryable(exc: DBAPIError) -> bool:
    # A concurrent request with the same idempotency key won the race: the retry finds its
    # entry. Deadlocks, serialization failures and a busy SQLite are safe to retry too.
    if isinstance(exc, IntegrityError):
        return True
    code = getattr(exc.orig, "sqlstate", None)
    if code in ("40001", "40P01"):
        return True
    return isinstance(exc, OperationalError) and "locked" in str(exc.orig).lower()


def transaction(
    factory: sessionmaker[Session], work: Callable[[Session], T], retries: int = 3
) -> T:
    """Run `work` in one transaction and commit it; retry a race it could not see coming.

    An IntegrityError that persists after the retries is re-raised: it is a real violation
    (for example a balance the database refused to overdraw).
    """
    for attempt in range(retries + 1):
        session = factory()
        try:
            with session.begin():
                return work(session)
        except DBAPIError as exc:
            if attempt == retries or not _retryable(exc):
                raise
            time.sleep(0.005 * (attempt + 1))
        finally:
            session.close()
    raise AssertionError("unreachable")


def ping(engine: Engine) -> None:
    """Ask the database for an answer; raises whatever keeps it from giving one."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


#: Why the database, not the request, kept work from being done: a lock held too long,
#: writes refused, or no database to talk to. Each is answered 503 with the details logged.
Refusal = Literal["busy", "read_only", "unavailable"]

#: PostgreSQL SQLSTATEs by refusal (class 08, connection exceptions, are all unavailable).
_REFUSAL_STATES: dict[str, Refusal] = {
    "25006": "read_only",  # read_only_sql_transaction (a standby, default_transaction_read_only)
    "40001": "busy",  # serialization_failure, after the retries
    "40P01": "busy",  # deadlock_detected, after the retries
    "55P03": "busy",  # lock_not_available (lock_timeout)
    "57014": "busy",  # query_canceled (statement_timeout)
    "53300": "unavailable",  # too_many_connections
    "57P01": "unavailable",  # admin_shutdown
    "57P02": "unavailable",  # crash_shutdown
    "57P03": "unavailable",  # cannot_connect_now (starting up)
}

#: SQLite's messages by refusal (its wording of SQLITE_READONLY, _BUSY, _LOCKED, _CANTOPEN,
#: _IOERR and _FULL; `_retryable` above reads "locked" the same way).
_REFUSAL_WORDS: tuple[tuple[str, Refusal], ...] = (
    ("readonly", "read_only"),  # attempt to write a readonly database
    ("read-only", "read_only"),
    ("locked", "busy"),  # database is locked, database table is locked
    ("unable to open database", "unavailable"),
    ("disk i/o error", "unavailable"),
    ("database or disk is full", "unavailable"),
)


def database_refusal(exc: BaseException) -> Refusal | None:
    """What a database error says about the database rather than the request, or None
    when it says nothing of the kind (a bug, or a constraint the work broke).

    Takes SQLAlchemy's errors and the driver's own (the journal's fast path raises those).
    """
    if isinstance(exc, PoolTimeout):
        return "busy"  # every pooled connection in use for longer than the pool waits
    error = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    state = getattr(error, "sqlstate", None)
    if isinstance(state, str) and state:
        return _REFUSAL_STATES.get(state) or ("unavailable" if state.startswith("08") else None)
    text = str(error).lower()
    for words, refusal in _REFUSAL_WORDS:
        if words in text:
            return refusal
    if not isinstance(error, sqlite3.Error) and (_operational(exc) or _operational(error)):
        # PEP 249's OperationalError with no SQLSTATE: the server could not be reached or
        # the connection was lost (psycopg's "connection failed", "server closed ...").
        return "unavailable"
    return None


def _operational(error: BaseException) -> bool:
    # SQLAlchemy's class and each driver's are unrelated; PEP 249 fixes the name.
    return any(cls.__name__ == "OperationalError" for cls in type(error).__mro__)
