"""The tokens of OAuth installs are encrypted at rest (issue 10, item 12): what the database
holds is a Fernet token, the app still reads the token; keys rotate (the first encrypts,
all decrypt, `creditbot slack rotate-key` moves every token to the newest); migration 0007
encrypts the tokens stored before it, on SQLite and PostgreSQL; and `creditbot serve`
refuses to start when it could not read them."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore

from bot.cli import cli
from bot.config import Settings
from bot.context import AppContext, build_context
from bot.slack.clients import client_for_team
from bot.slack.installations import encryption_key_problem, installation_store
from ledger.db import make_engine
from ledger.migrate import downgrade, upgrade
from ledger.slack_tokens import EncryptionKeyError, new_key
from tests.support.pg import create_database

CLIENT_ID = "111.222"
K1, K2 = new_key(), new_key()
TOKENS = {
    "bot_token": "xoxb-1111-secret",
    "bot_refresh_token": "xoxe-1-bot-refresh",
    "user_token": "xoxp-2222-secret",
    "user_refresh_token": "xoxe-1-user-refresh",
}
_names = itertools.count()


def _installation(team: str = "T0ACME") -> Installation:
    return Installation(
        app_id="A0001", enterprise_id=None, team_id=team, team_name="Acme", bot_id="B1",
        bot_user_id="UBOT", bot_scopes="commands,chat:write", user_id="UINSTALLER",
        user_scopes="", installed_at=datetime(2026, 11, 1, tzinfo=UTC).timestamp(), **TOKENS,
    )  # fmt: skip


def _context(url: str, keys: str) -> AppContext:
    return build_context(
        Settings(_env_file=None, database_url=url, slack_client_id=CLIENT_ID,
                 slack_client_secret="s", creditbot_encryption_keys=keys, run_scheduler=False)
    )  # fmt: skip


def _stored(engine) -> list[str]:
    """Every token column's value as the database holds it."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT bot_token, bot_refresh_token, user_token, user_refresh_token FROM slack_installations"
            " UNION ALL SELECT bot_token, bot_refresh_token, NULL, NULL FROM slack_bots"
        )).all()  # fmt: skip
    return [v for row in rows for v in row if v is not None]


def _read_back(context: AppContext, team: str = "T0ACME") -> dict[str, str]:
    store = installation_store(context)
    found = store.find_installation(enterprise_id=None, team_id=team)
    bot = store.find_bot(enterprise_id=None, team_id=team)
    assert bot.bot_token == found.bot_token and bot.bot_refresh_token == found.bot_refresh_token
    return {name: getattr(found, name) for name in TOKENS}


@pytest.fixture
def url(sqlite_url) -> str:
    return sqlite_url


def test_tokens_are_stored_encrypted_and_read_back(url):
    context = _context(url, K1)
    installation_store(context).save(_installation())
    stored = _stored(context.engine)
    assert len(stored) == 6
    assert not any(secret in value for value in stored for secret in TOKENS.values())
    assert all(value.startswith("gAAAAA") for value in stored)  # Fernet tokens
    assert _read_back(context) == TOKENS
    client = client_for_team(context, "T0ACME")  # what alert delivery and Home tabs use
    assert client.token == TOKENS["bot_token"]
    assert encryption_key_problem(context) is None


def test_keys_rotate_the_first_encrypts_and_all_decrypt(url, monkeypatch):
    installation_store(_context(url, K1)).save(_installation())
    before = _stored(make_engine(url))
    both = _context(url, f"{K2},{K1}")
    assert _read_back(both) == TOKENS  # the old key still decrypts
    monkeypatch.setattr("bot.cli.slack.context", lambda: both)
    result = CliRunner().invoke(cli, ["slack", "rotate-key"], catch_exceptions=False)
    assert result.exit_code == 0 and "6 Slack token(s) encrypted" in result.output
    after = _stored(both.engine)
    assert len(after) == 6 and set(after).isdisjoint(before)
    assert _read_back(_context(url, K2)) == TOKENS  # the old key can go now
    with pytest.raises(EncryptionKeyError, match="cannot be decrypted"):
        _read_back(_context(url, K1))
    assert "cannot be decrypted" in encryption_key_problem(_context(url, K1))


def test_a_key_that_is_not_a_fernet_key_is_refused_clearly(url):
    problem = encryption_key_problem(_context(url, "not-a-key"))
    assert "is not a Fernet key" in problem and "creditbot slack new-key" in problem


def test_new_key_prints_a_usable_key():
    result = CliRunner().invoke(cli, ["slack", "new-key"])
    key = result.output.strip()
    assert result.exit_code == 0 and len(key) == 44 and key != new_key()


# -- creditbot serve ------------------------------------------------------------------------


BIN = Path(sys.executable).parent


def test_serve_refuses_to_start_with_installs_but_no_key(url, tmp_path):
    installation_store(_context(url, K1)).save(_installation())
    env = {k: v for k, v in os.environ.items() if k != "CREDITBOT_ENCRYPTION_KEYS"}
    env.update(DATABASE_URL=url, RUN_SCHEDULER="false")
    done = subprocess.run([BIN / "creditbot", "serve", "--port", "1"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()  # one clear line, no traceback
    assert line.startswith("Error: 6 Slack token(s) of OAuth installs are stored")
    assert "CREDITBOT_ENCRYPTION_KEYS is not set" in line


def test_serve_refuses_a_key_that_does_not_open_the_tokens(url, monkeypatch):
    installation_store(_context(url, K1)).save(_installation())
    monkeypatch.setattr("bot.cli.core.context", lambda: _context(url, K2))
    result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 1
    assert "cannot be decrypted with CREDITBOT_ENCRYPTION_KEYS" in result.output


def test_oauth_without_a_key_is_not_configured(url):
    from bot.slack.app import configured

    settings = _context(url, "").settings.model_copy(update={"slack_signing_secret": "s"})
    missing = configured(settings)
    assert missing and "CREDITBOT_ENCRYPTION_KEYS is not set" in missing


# -- migration 0007 -------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def before_0007(request, tmp_path):
    """A database at 0005 (before encryption) holding one install with plain tokens, as
    the previous version's store wrote it."""
    if request.param == "sqlite":
        db = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        db = create_database(
            request.getfixturevalue("pg_cluster"), f"old_{os.getpid()}_{next(_names)}"
        )
    engine = make_engine(db)
    upgrade(engine, "0005")
    SQLAlchemyInstallationStore(client_id=CLIENT_ID, engine=engine).save(_installation())
    yield db, engine
    engine.dispose()


def _revision(engine) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()


def test_migration_encrypts_the_tokens_already_stored_and_back(before_0007):
    db, engine = before_0007
    assert sorted(_stored(engine)) == sorted([*TOKENS.values(), *list(TOKENS.values())[:2]])
    upgrade(engine, encryption_keys=K1)
    assert all(v.startswith("gAAAAA") for v in _stored(engine)) and len(_stored(engine)) == 6
    assert _read_back(_context(db, K1)) == TOKENS
    long_token = "xoxe.xoxb-" + "9" * 300  # longer than the 200 characters the columns held
    installation_store(_context(db, K1)).save(
        Installation(**{**_installation("T0LONG").to_dict(), "bot_token": long_token})
    )
    assert _read_back(_context(db, K1), "T0LONG")["bot_token"] == long_token
    downgrade(engine, "0005", encryption_keys=K1)
    assert set(TOKENS.values()) <= set(_stored(engine)) and long_token in _stored(engine)


def test_migration_with_tokens_and_no_key_stops_and_changes_nothing(before_0007, monkeypatch):
    _, engine = before_0007
    monkeypatch.delenv("CREDITBOT_ENCRYPTION_KEYS", raising=False)
    with pytest.raises(EncryptionKeyError, match="creditbot slack new-key"):
        upgrade(engine)
    assert _revision(engine) == "0005"
    assert set(TOKENS.values()) <= set(_stored(engine))


def test_migration_takes_the_key_from_the_environment(before_0007, monkeypatch):
    db, engine = before_0007
    monkeypatch.setenv("CREDITBOT_ENCRYPTION_KEYS", f"{K2},{K1}")
    upgrade(engine)
    assert _read_back(_context(db, K2)) == TOKENS


def test_db_upgrade_without_a_key_says_what_to_do(before_0007, monkeypatch):
    db, _ = before_0007
    # `db upgrade` builds its context without the database check other commands make.
    monkeypatch.setattr("bot.cli.core.build_context", lambda: _context(db, ""))
    monkeypatch.delenv("CREDITBOT_ENCRYPTION_KEYS", raising=False)
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: Slack installations hold tokens")
    assert "CREDITBOT_ENCRYPTION_KEYS" in result.output and "Traceback" not in result.output
