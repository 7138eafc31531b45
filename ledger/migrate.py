"""Running the Alembic migrations that live with the ledger."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

HERE = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def upgrade(engine: Engine, revision: str = "head", *, encryption_keys: str | None = None) -> None:
    """Bring the database to `revision` (the newest by default). `encryption_keys`
    (CREDITBOT_ENCRYPTION_KEYS) encrypt the Slack tokens already stored (0007); without
    them the environment's are used."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes["encryption_keys"] = encryption_keys
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str, *, encryption_keys: str | None = None) -> None:
    """Take the database back to `revision`."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes["encryption_keys"] = encryption_keys
        command.downgrade(config, revision)
