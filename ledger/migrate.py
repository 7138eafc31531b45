"""Running the Alembic migrations that live with the ledger, and telling whether a
database is at the newest one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

HERE = Path(__file__).parent / "migrations"


def _scripts_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    return config


def alembic_config(engine: Engine) -> Config:
    config = _scripts_config()
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """One transaction for the migrations. On SQLite, foreign keys are off while they run
    and checked before the commit: a migration that rebuilds a table other rows refer to
    (batch mode copies it, drops the old one and renames the copy) would otherwise fail on
    any database with data. SQLite ignores the switch inside a transaction, so it is set
    before the transaction begins."""
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                yield connection
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
                    if broken is not None:
                        raise RuntimeError(f"a migration broke a foreign key: {tuple(broken)}")
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def upgrade(engine: Engine, revision: str = "head", *, encryption_keys: str | None = None) -> None:
    """Bring the database to `revision` (the newest by default). `encryption_keys`
    (CREDITBOT_ENCRYPTION_KEYS) encrypt the Slack tokens already stored (0007); without
    them the environment's are used."""
    config = alembic_config(engine)
    with _migrating(engine) as connection:
        config.attributes["connection"] = connection
        config.attributes["encryption_keys"] = encryption_keys
        command.upgrade(config, revision)


def head_revision() -> str:
    """The newest revision this code knows (what `upgrade` brings a database to)."""
    head = ScriptDirectory.from_config(_scripts_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations under {HERE}")
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at; None when it was never migrated."""
    return MigrationContext.configure(connection).get_current_revision()


def known_revision(revision: str) -> bool:
    """Whether this code has the migration `revision` (a newer creditbot may have run one
    this code does not know)."""
    try:
        return ScriptDirectory.from_config(_scripts_config()).get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown id
        return False


def downgrade(engine: Engine, revision: str, *, encryption_keys: str | None = None) -> None:
    """Take the database back to `revision`."""
    config = alembic_config(engine)
    with _migrating(engine) as connection:
        config.attributes["connection"] = connection
        config.attributes["encryption_keys"] = encryption_keys
        command.downgrade(config, revision)
