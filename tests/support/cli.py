"""Running `creditbot` commands in a test: in-process through click (fast), or as the
installed command in a child process (exactly what a person types)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot.cli import cli, environment
from bot.config import get_settings

CREDITBOT = str(Path(sys.executable).with_name("creditbot"))


class Cli:
    """`creditbot` in this process, with the environment a test gives it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.runner = CliRunner()

    def env(self, **values: str | None) -> Cli:
        for key, value in values.items():
            if value is None:
                self.monkeypatch.delenv(key, raising=False)
            else:
                self.monkeypatch.setenv(key, value)
        return self

    def __call__(self, *args: str, code: int | None = 0) -> Result:
        get_settings.cache_clear()
        environment.context.cache_clear()
        try:
            result = self.runner.invoke(cli, list(args), prog_name="creditbot")
        finally:
            try:
                environment.context().engine.dispose()
            except Exception:  # noqa: BLE001 - a test of a broken database has no context
                pass
            environment.context.cache_clear()
            get_settings.cache_clear()
        if code is not None:
            assert result.exit_code == code, (result.exit_code, result.output, result.exception)
        return result

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).stdout)


@pytest.fixture
def creditbot(monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(monkeypatch)


def run_creditbot(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """The installed `creditbot` in a child process, with only `env` added to a clean
    environment (no DATABASE_URL, Slack or Stripe settings of the caller's)."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("DATABASE_URL", "SLACK_", "STRIPE_", "CREDITBOT_", "PUBLIC_URL"))}  # fmt: skip
    return subprocess.run(
        [CREDITBOT, *args], env={**base, **env}, cwd=cwd, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def run(db_url, monkeypatch):
    """`creditbot ARGS` in this process against the test's database; asserts success unless
    `ok=False`."""
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
