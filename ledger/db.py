"""Engines, sessions and the unit of work, for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
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
