"""A new operator's first commands: the database lives in one documented place, and a
database that is missing, unmigrated or unreachable is one clear line, a hint and exit
code 3, never a traceback, and never an empty file left behind."""

from __future__ import annotations

import sqlite3
from importlib.metadata import version

from sqlalchemy.exc import OperationalError

from bot.cli.environment import EXIT_DATABASE
from tests.support.api_server import free_port
from tests.support.cli import run_creditbot


def test_a_read_command_before_db_upgrade_says_what_to_do_and_creates_nothing(tmp_path):
    home = tmp_path / "home"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_creditbot("accounts", "list", env={"CREDITBOT_HOME": str(home)}, cwd=elsewhere)
    assert result.returncode == EXIT_DATABASE
    assert result.stderr.splitlines() == [
        f"Error: no database at {home / 'creditbot.db'}",
        "Hint: run `creditbot db upgrade` to create it",
    ]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not home.exists() and list(elsewhere.iterdir()) == []


def test_the_default_database_is_the_same_file_wherever_a_command_starts(tmp_path):
    """XDG: $XDG_DATA_HOME/creditbot/creditbot.db, not the current directory."""
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path / "user")}
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    upgraded = run_creditbot("db", "upgrade", env=env, cwd=here)
    assert upgraded.returncode == 0, upgraded.stderr
    database = tmp_path / "data" / "creditbot" / "creditbot.db"
    assert f"sqlite:///{database} is at revision" in upgraded.stdout
    made = run_creditbot("accounts", "create", "--name", "Acme", env=env, cwd=here)
    assert made.returncode == 0, made.stderr
    listed = run_creditbot("accounts", "list", "--json", env=env, cwd=there)
    assert listed.returncode == 0, listed.stderr
    assert '"name": "Acme"' in listed.stdout
    assert list(here.iterdir()) == [] and list(there.iterdir()) == []
    assert database.exists()


def test_creditbot_home_names_the_data_directory(creditbot, tmp_path):
    creditbot.env(CREDITBOT_HOME=str(tmp_path / "cb"), DATABASE_URL=None)
    assert f"sqlite:///{tmp_path / 'cb' / 'creditbot.db'}" in creditbot("db", "upgrade").output
    creditbot("accounts", "create", "--name", "Acme")
    assert [a["name"] for a in creditbot.json("accounts", "list")] == ["Acme"]


def test_an_unmigrated_database_is_refused_with_the_upgrade_hint(creditbot, tmp_path):
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()  # an empty SQLite file: no tables
    creditbot.env(DATABASE_URL=f"sqlite:///{path}")
    result = creditbot("agents", "list", "--account", "Acme", code=EXIT_DATABASE)
    assert "has no tables yet" in result.stderr
    assert "Hint: run `creditbot db upgrade` to create them" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_database_behind_the_code_asks_for_an_upgrade(creditbot, tmp_path):
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    creditbot.env(DATABASE_URL=url)
    creditbot("db", "upgrade", "--revision", "0004")
    result = creditbot("accounts", "list", code=EXIT_DATABASE)
    assert "is at revision 0004; this creditbot needs" in result.stderr
    assert "creditbot db upgrade" in result.stderr
    creditbot("db", "upgrade")
    creditbot("accounts", "list")


def test_an_unreachable_postgresql_is_one_line_and_a_hint(creditbot):
    port = free_port()  # nothing listens there
    creditbot.env(DATABASE_URL=f"postgresql://creditbot:secret@127.0.0.1:{port}/creditbot")
    result = creditbot("accounts", "show", "Acme", code=EXIT_DATABASE)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith(
        f"Error: cannot use the database at postgresql+psycopg://creditbot:***@127.0.0.1:{port}/"
    )
    assert "secret" not in result.stderr  # the password is never printed
    assert lines[1].startswith("Hint: check that the database server runs")


def test_a_database_that_stops_answering_mid_command_is_not_a_traceback(
    creditbot, sqlite_url, monkeypatch
):
    import ledger.accounts

    def gone(session):
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(ledger.accounts, "list_accounts", gone)
    creditbot.env(DATABASE_URL=sqlite_url)
    result = creditbot("accounts", "list", code=EXIT_DATABASE)
    assert "Error: the database stopped answering: server closed the connection" in result.stderr


def test_version(creditbot):
    result = creditbot("--version")
    assert result.stdout.strip() == f"creditbot, version {version('creditbot')}"


def test_db_upgrade_of_an_unreachable_database_is_one_line(creditbot):
    creditbot.env(DATABASE_URL="postgresql://u:p@127.0.0.1:9/x")
    result = creditbot("db", "upgrade", code=EXIT_DATABASE)
    assert result.stderr.startswith("Error: cannot use the database at")
    assert "Traceback" not in result.output
