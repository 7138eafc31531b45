"""Shared fixtures: a database on SQLite and on PostgreSQL, migrated, one per test.

PostgreSQL: a throwaway cluster starts once per run, in each pytest-xdist worker its own
(its own port and data directory). Without one the PostgreSQL variants are skipped, except
under CI=true, where a PostgreSQL that cannot start fails the run (in every worker).
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import settings
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ledger.db import make_engine, make_session_factory
from ledger.migrate import upgrade
from tests.support.cli import creditbot, run  # noqa: F401  (the CLI fixtures)
from tests.support.pg import (
    PostgresCluster,
    PostgresUnavailable,
    create_database,
    drop_database,
    start_cluster,
)

# An app built in a test (`with TestClient(create_app(...))`) would otherwise start the
# background scheduler, whose jobs (alert delivery, renewals) would race the test's own
# assertions. Tests that want it pass `Settings(run_scheduler=True)`.
os.environ.setdefault("RUN_SCHEDULER", "false")
# A command a test runs without DATABASE_URL uses a data directory of the test run's own,
# never the developer's ~/.local/share/creditbot.
os.environ.setdefault("CREDITBOT_HOME", tempfile.mkdtemp(prefix="creditbot-home-"))

# No test asserts how long something takes (bench/ measures speed), and hypothesis's
# default 200 ms deadline per example is such an assertion: on a machine whose two cores
# run two test workers and other jobs, a pure function's example can wait that long for a
# core and fail the test as "unreliable timings".
settings.register_profile("creditbot", deadline=None)
settings.load_profile("creditbot")

TEMPLATE = "creditbot_template"
_names = itertools.count()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `slow` tests first (a stable sort, the same in every xdist worker): a worker
    that starts a minutes-long test last would run it alone while the other waits."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    try:
        cluster = start_cluster()
    except PostgresUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL must run under CI: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        url = create_database(cluster, TEMPLATE)
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield cluster
    finally:
        cluster.stop()


def _pg_url(request: pytest.FixtureRequest, cluster: PostgresCluster) -> str:
    """A database copied from the template, dropped when the test ends: each is 8 MB on
    disk, and a worker's cluster would otherwise hold hundreds of them (gigabytes written,
    and deleted only when the run ends)."""
    name = f"test_{os.getpid()}_{next(_names)}"
    url = create_database(cluster, name, template=TEMPLATE)
    request.addfinalizer(lambda: drop_database(cluster, name))
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A migrated, empty database: each test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'creditbot.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return url
    return _pg_url(request, request.getfixturevalue("pg_cluster"))


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A migrated SQLite database only (for tests of the adapters)."""
    url = f"sqlite:///{tmp_path / 'creditbot.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def pg_url(request: pytest.FixtureRequest, pg_cluster: PostgresCluster) -> str:
    """A migrated PostgreSQL database only."""
    return _pg_url(request, pg_cluster)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)
