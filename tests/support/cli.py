"""Running the `creditbot` command in-process against a test database (the `run` fixture)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cli import cli, environment
from bot.config import get_settings

__all__ = ["run"]


@pytest.fixture
def run(db_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    get_settings.cache_clear()
    environment.context.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(cli, list(args), prog_name="creditbot", catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    yield invoke
    environment.context().engine.dispose()
    environment.context.cache_clear()
    get_settings.cache_clear()
