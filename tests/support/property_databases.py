"""Fresh migrated databases for property tests: one per hypothesis example, fast enough to
make many (a copied SQLite file, or a PostgreSQL database cloned from the template)."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable

import pytest

from ledger.db import make_engine
from ledger.migrate import upgrade
from tests.conftest import TEMPLATE
from tests.support.pg import create_database


def database_factory(
    database: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], str]:
    """A function that returns the URL of a new, migrated, empty database each call."""
    names = itertools.count()
    if database == "sqlite":
        folder = tmp_path_factory.mktemp("props")
        template = folder / "template.db"
        engine = make_engine(f"sqlite:///{template}")
        upgrade(engine)
        engine.dispose()

        def new_sqlite() -> str:
            path = folder / f"case-{next(names)}.db"
            shutil.copy(template, path)
            return f"sqlite:///{path}"

        return new_sqlite
    cluster = request.getfixturevalue("pg_cluster")

    def new_postgres() -> str:
        return create_database(cluster, f"prop_{os.getpid()}_{next(names)}", template=TEMPLATE)

    return new_postgres
