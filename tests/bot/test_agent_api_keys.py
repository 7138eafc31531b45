"""API keys: shown once, stored hashed, scoped to one account, revocable; and the CLI."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import event, select

from ledger.api_keys import (
    authenticate,
    create_key,
    hash_secret,
    list_keys,
    revoke_key,
)
from ledger.db import transaction
from ledger.errors import InvalidInput, NotFound
from ledger.models.api import ApiKey
from tests.support.api_helpers import make_api, snapshot
from tests.support.factories import story


def test_secret_is_stored_only_as_its_hash(sessions):
    ids = story(sessions)
    new = transaction(sessions, lambda s: create_key(s, ids["account"], "runtime"))
    assert new.secret.startswith("cb_") and len(new.secret) >= 40
    assert new.key.prefix == new.secret[:11]
    rows = transaction(sessions, lambda s: s.execute(select(ApiKey)).scalars().all())
    assert len(rows) == 1
    stored = {rows[0].prefix, rows[0].secret_hash, rows[0].name}
    assert new.secret not in stored
    assert rows[0].secret_hash == hash_secret(new.secret)
    assert transaction(sessions, lambda s: authenticate(s, new.secret)) == ids["account"]


def test_authenticate_refuses_unknown_malformed_and_revoked(sessions):
    ids = story(sessions)
    new = transaction(sessions, lambda s: create_key(s, ids["account"]))
    other = transaction(sessions, lambda s: create_key(s, ids["account"], "second"))
    for bad in (None, "", new.secret[:-1], new.secret + "x", "cb_" + "x" * 300, "sk_live_1"):
        assert transaction(sessions, lambda s, b=bad: authenticate(s, b)) is None
    transaction(sessions, lambda s: revoke_key(s, ids["account"], new.key.prefix))
    assert transaction(sessions, lambda s: authenticate(s, new.secret)) is None
    # Revoking one key leaves the others working; revoking twice keeps the first time.
    assert transaction(sessions, lambda s: authenticate(s, other.secret)) == ids["account"]
    first = transaction(sessions, lambda s: list_keys(s, ids["account"]))[0].revoked_at
    again = transaction(sessions, lambda s: revoke_key(s, ids["account"], new.key.id))
    assert again.revoked_at == first
    listed = transaction(sessions, lambda s: list_keys(s, ids["account"]))
    assert [(k.name, k.active) for k in listed] == [("default", False), ("second", True)]


def test_revoke_needs_a_key_of_this_account(sessions):
    ids = story(sessions)
    new = transaction(sessions, lambda s: create_key(s, ids["account"]))
    with pytest.raises(NotFound):
        transaction(sessions, lambda s: revoke_key(s, ids["account"] + 1, new.key.id))
    with pytest.raises(InvalidInput):
        transaction(sessions, lambda s: revoke_key(s, ids["account"], "cb_"))
    with pytest.raises(NotFound):
        transaction(sessions, lambda s: create_key(s, 9999))


def test_cli_create_list_revoke(sqlite_url, monkeypatch):
    from bot.cli import cli, environment
    from bot.config import get_settings
    from ledger.db import make_engine, make_session_factory

    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    environment.context.cache_clear()
    engine = make_engine(sqlite_url)
    sessions = make_session_factory(engine)
    ids = story(sessions)
    runner = CliRunner()
    try:
        created = runner.invoke(cli, ["api-keys", "create", "--account", "Acme", "--name", "bot"])
        assert created.exit_code == 0, created.output
        secret = created.stdout.strip().splitlines()[-1]
        assert secret.startswith("cb_")
        assert transaction(sessions, lambda s: authenticate(s, secret)) == ids["account"]
        listed = runner.invoke(cli, ["api-keys", "list", "--account", "Acme"])
        assert secret[:11] in listed.output and secret not in listed.output
        assert "active" in listed.output
        revoked = runner.invoke(cli, ["api-keys", "revoke", "--account", "Acme", secret[:11]])
        assert revoked.exit_code == 0, revoked.output
        assert transaction(sessions, lambda s: authenticate(s, secret)) is None
        unknown = runner.invoke(cli, ["api-keys", "revoke", "--account", "Acme", "42"])
        assert unknown.exit_code != 0 and "No API key" in unknown.output
    finally:
        get_settings.cache_clear()
        environment.context.cache_clear()
        engine.dispose()


def test_a_known_key_costs_no_query_and_a_revocation_elsewhere_counts_at_once(db_url, sessions):
    ids = story(sessions)
    api = make_api(db_url, ids["account"])
    statements: list[str] = []
    event.listen(
        api.context.engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *args: statements.append(statement),
    )
    try:
        for n in range(5):
            assert api.get("/v1/balance").status_code == 200
            body = {"agent_id": ids["a"], "direction": "outbound"}
            assert api.post("/v1/messages", body, f"k{n}").status_code == 200
        assert len([s for s in statements if "FROM api_keys" in s]) == 1
        # Revoked through another engine, as `creditbot api-keys revoke` would.
        transaction(sessions, lambda s: revoke_key(s, ids["account"], 1))
        before = snapshot(sessions)
        body = {"agent_id": ids["a"], "direction": "outbound"}
        assert api.post("/v1/messages", body, "after").status_code == 401
        assert api.get("/v1/balance").status_code == 401
        assert snapshot(sessions) == before
    finally:
        api.context.engine.dispose()
