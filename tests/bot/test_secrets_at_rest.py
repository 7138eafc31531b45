"""No secret in plain text at rest (issue 10, the class of item 12): webhook endpoints'
signing secrets and the signed-link key the server makes when SECRET_KEY is unset are kept
encrypted with CREDITBOT_ENCRYPTION_KEYS, like the Slack tokens. A receiver still verifies
every delivery with standardwebhooks after a restart; keys rotate; `webhooks add` refuses
without a key; a secret the keys cannot open fails its delivery with the reason, and
`creditbot doctor` names it; migration 0014 encrypts what was stored before it (and
downgrade decrypts), on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import os
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bot.cli import cli
from bot.config import Settings
from bot.context import AppContext, build_context, secrets_cipher
from bot.doctor import diagnose
from bot.outbound.webhooks import deliver_due_webhooks
from bot.secrets_at_rest import check_secrets, link_key_problem
from bot.signed_links import signed_url, valid
from ledger import destinations
from ledger.charges import charge
from ledger.cycles import utcnow
from ledger.db import make_engine, make_session_factory, transaction
from ledger.migrate import downgrade, upgrade
from ledger.models.destinations import OutboxDelivery
from ledger.secrets_at_rest import EncryptionKeyError, new_key
from tests.support.encryption import ENCRYPTION_KEY
from tests.support.factories import story
from tests.support.pg import create_database
from tests.support.webhook_receiver import *  # noqa: F403  (the webhook_receiver fixture)

K1, K2 = ENCRYPTION_KEY, new_key()
_names = itertools.count()


def _context(url: str, keys: str, **extra) -> AppContext:
    return build_context(
        Settings(_env_file=None, database_url=url, slack_bot_token="", run_scheduler=False,
                 public_url="https://cb.example", creditbot_encryption_keys=keys, **extra)
    )  # fmt: skip


def _stored(engine, sql: str) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql)).scalars())


def _hook_secrets(engine) -> list[str]:
    return _stored(engine, "SELECT secret FROM webhook_endpoints ORDER BY id")


def _link_keys(engine) -> list[str]:
    return _stored(engine, "SELECT value FROM server_secrets")


def _spend_plan(ctx, ids, key="k1"):
    """Agent A spends the whole plan: three alerts and agent.stopped for the endpoint."""
    transaction(ctx.sessions, lambda s: charge(s, ids["account"], ids["a"], "message", 1000,
                                               idempotency_key=key))  # fmt: skip


def _add_endpoint(ctx, account_id, url):
    return transaction(
        ctx.sessions,
        lambda s: destinations.add_endpoint(s, account_id, url, cipher=secrets_cipher(ctx)),
    )


def _deliveries(ctx) -> list[tuple[int, str | None, bool]]:
    def read(s):
        rows = s.query(OutboxDelivery).order_by(OutboxDelivery.id).all()
        return [(r.attempts, r.last_error, r.delivered_at is not None) for r in rows]

    return transaction(ctx.sessions, read)


@pytest.fixture
def ctx(db_url):
    context = _context(db_url, K1)
    yield context
    context.engine.dispose()


# -- webhook signing secrets ----------------------------------------------------------------


def test_the_stored_secret_is_not_the_secret_and_deliveries_verify_after_a_restart(
    ctx, db_url, webhook_receiver
):
    hook = webhook_receiver
    ids = story(ctx.sessions, now=utcnow())
    endpoint, secret = _add_endpoint(ctx, ids["account"], hook.url)
    hook.secret = secret
    [stored] = _hook_secrets(ctx.engine)
    assert secret.startswith("whsec_") and secret not in stored and stored.startswith("gAAAAA")
    assert endpoint.secret == stored, "the model holds what the database holds"
    _spend_plan(ctx, ids)
    ctx.engine.dispose()

    restarted = _context(db_url, K1)  # a new process: nothing of the secret kept in memory
    assert deliver_due_webhooks(restarted, now=utcnow() + timedelta(seconds=1)) == 4
    restarted.engine.dispose()
    assert hook.forged == 0 and len(hook.events) == 4  # each verified by standardwebhooks
    assert check_secrets(restarted).status == "ok"


def test_a_secret_the_keys_cannot_open_fails_its_delivery_with_the_reason(
    ctx, db_url, webhook_receiver
):
    hook = webhook_receiver
    ids = story(ctx.sessions, now=utcnow())
    endpoint, hook.secret = _add_endpoint(ctx, ids["account"], hook.url)
    _spend_plan(ctx, ids)
    now = utcnow() + timedelta(seconds=1)

    for keys, why, doctor_says in (
        (K2, "cannot be decrypted with CREDITBOT_ENCRYPTION_KEYS",
         "cannot be decrypted with CREDITBOT_ENCRYPTION_KEYS"),
        ("", "is encrypted, but CREDITBOT_ENCRYPTION_KEYS is not set",
         "cannot be decrypted: CREDITBOT_ENCRYPTION_KEYS is not set"),
        ("not-a-key", "is not a Fernet key", "is not a Fernet key"),
    ):  # fmt: skip
        wrong = _context(db_url, keys)
        assert deliver_due_webhooks(wrong, now=now) == 0  # no exception: a failed attempt
        first = _deliveries(wrong)[0]
        assert first[2] is False and first[1].startswith("not signed: ") and why in first[1]
        finding = check_secrets(wrong)
        assert finding.status == "fail" and doctor_says in finding.message
        if keys != "not-a-key":
            assert f"webhook endpoint(s) {endpoint.id}" in finding.message
            assert "deliveries to them fail" in finding.message
        assert [f for f in diagnose(wrong) if f.part == "secrets"] == [finding]
        wrong.engine.dispose()
        now += timedelta(minutes=11)  # past the backoff
    assert hook.answers == [], "nothing unsigned or wrongly signed was sent"

    assert deliver_due_webhooks(ctx, now=now) == 4, "the right key again: all delivered"
    assert hook.forged == 0 and len(hook.events) == 4


def test_webhooks_add_without_a_key_refuses_and_adds_nothing(creditbot, db_url):
    creditbot.env(DATABASE_URL=db_url, CREDITBOT_ENCRYPTION_KEYS="")
    creditbot("accounts", "create", "--name", "Acme", "--plan-credits", "100")
    refused = creditbot("webhooks", "add", "--account", "Acme", "https://hooks.example.com/a",
                        code=1)  # fmt: skip
    [line] = refused.output.strip().splitlines()
    assert line.startswith("Error: CREDITBOT_ENCRYPTION_KEYS is not set")
    assert "`creditbot slack new-key`" in line and refused.stdout.count("whsec_") == 0
    assert creditbot.json("webhooks", "list") == []
    engine = make_engine(db_url)
    with pytest.raises(EncryptionKeyError):  # the ledger refuses it, whoever calls
        transaction(
            make_session_factory(engine),
            lambda s: destinations.add_endpoint(s, 1, "https://hooks.example.com/a", cipher=None),
        )
    engine.dispose()


def test_rotation_re_encrypts_webhook_secrets_and_the_link_key(ctx, db_url, webhook_receiver,
                                                               monkeypatch):  # fmt: skip
    hook = webhook_receiver
    ids = story(ctx.sessions, now=utcnow())
    _, hook.secret = _add_endpoint(ctx, ids["account"], hook.url)
    link = signed_url(ctx, "/usage/1/chart.png", {"to": "2026-11-10"})
    before = _hook_secrets(ctx.engine) + _link_keys(ctx.engine)
    assert len(before) == 2 and all(v.startswith("gAAAAA") for v in before)

    both = _context(db_url, f"{K2},{K1}")
    monkeypatch.setattr("bot.cli.slack.context", lambda: both)
    done = CliRunner().invoke(cli, ["slack", "rotate-key"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert "1 webhook signing secret(s) encrypted" in done.output
    assert "1 signed-link key(s) encrypted" in done.output
    after = _hook_secrets(ctx.engine) + _link_keys(ctx.engine)
    assert set(after).isdisjoint(before)

    only_new = _context(db_url, K2)  # the old key can go now
    path = urlsplit(link).path
    q = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert valid(only_new, path, {"to": q["to"]}, q["expires"], q["signature"])
    _spend_plan(ctx, ids)
    assert deliver_due_webhooks(only_new, now=utcnow() + timedelta(seconds=1)) == 4
    assert hook.forged == 0 and len(hook.events) == 4
    old_only = _context(db_url, K1)
    assert check_secrets(old_only).status == "fail"
    for c in (both, only_new, old_only):
        c.engine.dispose()


# -- the signed-link key --------------------------------------------------------------------


def test_the_link_key_is_stored_encrypted_and_links_hold_across_a_restart(db_url, creditbot):
    one = _context(db_url, K1)
    link = signed_url(one, "/usage/1/chart.png", {"to": "2026-11-10"})
    [stored] = _link_keys(one.engine)
    assert stored.startswith("gAAAAA")
    two = _context(db_url, K1)  # another replica, or the same after a restart
    q = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert valid(two, urlsplit(link).path, {"to": q["to"]}, q["expires"], q["signature"])
    assert link_key_problem(two) is None and check_secrets(two).message.endswith(
        "the signed-link key encrypted"
    )

    wrong = _context(db_url, K2)
    problem = link_key_problem(wrong)
    assert problem and "signed-link key" in problem and "cannot be decrypted" in problem
    assert check_secrets(wrong).status == "fail"
    with pytest.raises(EncryptionKeyError):
        signed_url(wrong, "/usage/1/chart.png", {})
    creditbot.env(DATABASE_URL=db_url, CREDITBOT_ENCRYPTION_KEYS=K2, SECRET_KEY="")
    [line] = creditbot("serve", "--port", "1", code=1).output.strip().splitlines()
    assert line.startswith("Error: A signed-link key in the database cannot be decrypted")
    # SECRET_KEY signs links without the database: the stored key no longer matters.
    keyed = _context(db_url, K2, secret_key="s3cret")
    assert link_key_problem(keyed) is None and check_secrets(keyed).status == "ok"
    for c in (one, two, wrong, keyed):
        c.engine.dispose()


def test_without_keys_the_link_key_is_kept_as_before_and_doctor_warns(db_url):
    bare = _context(db_url, "")
    link = signed_url(bare, "/usage/1/chart.png", {})
    [stored] = _link_keys(bare.engine)
    assert not stored.startswith("gAAAAA") and len(stored) == 64  # as it always was
    q = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert valid(_context(db_url, ""), urlsplit(link).path, {}, q["expires"], q["signature"])
    finding = check_secrets(bare)
    assert finding.status == "warn"
    assert finding.message == "the signed-link key is kept in plain text (SECRET_KEY is unset)"
    assert "SECRET_KEY" in finding.hint and "CREDITBOT_ENCRYPTION_KEYS" in finding.hint

    # Keys set later: links still work, doctor asks for rotation, rotation encrypts it.
    keyed = _context(db_url, K1)
    assert valid(keyed, urlsplit(link).path, {}, q["expires"], q["signature"])
    assert check_secrets(keyed).hint == "run `creditbot slack rotate-key` to encrypt them"
    with keyed.engine.begin() as conn:
        from ledger.secrets_at_rest import rotate_secrets

        rotate_secrets(conn, secrets_cipher(keyed))
    assert _link_keys(keyed.engine)[0].startswith("gAAAAA")
    fresh = _context(db_url, K1)
    assert valid(fresh, urlsplit(link).path, {}, q["expires"], q["signature"])
    assert check_secrets(fresh).status == "ok"
    for c in (bare, keyed, fresh):
        c.engine.dispose()


# -- migration 0014 -------------------------------------------------------------------------

PLAIN_HOOK = "whsec_" + "A" * 43 + "="
PLAIN_LINK = "ab" * 32


@pytest.fixture(params=["sqlite", "postgres"])
def before_0014(request, tmp_path):
    """A database at 0013 holding one endpoint and the link key in plain text, as the
    previous version wrote them."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = create_database(
            request.getfixturevalue("pg_cluster"), f"old13_{os.getpid()}_{next(_names)}"
        )
    engine = make_engine(url)
    upgrade(engine, "0013")
    ids = story(make_session_factory(engine), now=utcnow())
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO webhook_endpoints (account_id, url, secret, event_types,"
                    " created_at) VALUES (:a, 'https://hooks.example.com/x', :s, '[]', :t)"),
            {"a": ids["account"], "s": PLAIN_HOOK, "t": utcnow()},
        )  # fmt: skip
        conn.execute(
            sa.text("INSERT INTO server_secrets (name, value, created_at) VALUES"
                    " ('links', :v, :t)"),
            {"v": PLAIN_LINK, "t": utcnow()},
        )  # fmt: skip
    yield url, engine
    engine.dispose()


def _revision(engine) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()


def test_migration_encrypts_what_was_stored_and_downgrade_decrypts(before_0014, monkeypatch):
    url, engine = before_0014
    monkeypatch.delenv("CREDITBOT_ENCRYPTION_KEYS", raising=False)
    upgrade(engine, encryption_keys=K1)
    [hook], [key] = _hook_secrets(engine), _link_keys(engine)
    assert hook.startswith("gAAAAA") and key.startswith("gAAAAA")
    ctx = _context(url, K1)
    assert check_secrets(ctx).status == "ok"
    from ledger.web_access import server_secret

    assert transaction(ctx.sessions, lambda s: server_secret(s, cipher=secrets_cipher(ctx))) == (
        PLAIN_LINK
    )
    assert secrets_cipher(ctx).decrypt(hook) == PLAIN_HOOK
    ctx.engine.dispose()

    downgrade(engine, "0013", encryption_keys=K1)
    assert _revision(engine) == "0013"
    assert (_hook_secrets(engine), _link_keys(engine)) == ([PLAIN_HOOK], [PLAIN_LINK])


def test_migration_with_webhook_secrets_and_no_key_stops_and_changes_nothing(before_0014,
                                                                             monkeypatch):  # fmt: skip
    _, engine = before_0014
    monkeypatch.delenv("CREDITBOT_ENCRYPTION_KEYS", raising=False)
    with pytest.raises(EncryptionKeyError, match="creditbot slack new-key"):
        upgrade(engine)
    assert _revision(engine) == "0013"
    assert (_hook_secrets(engine), _link_keys(engine)) == ([PLAIN_HOOK], [PLAIN_LINK])


def test_migration_without_a_key_leaves_a_lone_link_key_as_it_was(before_0014, monkeypatch):
    url, engine = before_0014
    monkeypatch.delenv("CREDITBOT_ENCRYPTION_KEYS", raising=False)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM webhook_endpoints"))
    upgrade(engine)
    assert _link_keys(engine) == [PLAIN_LINK]
    ctx = _context(url, "")
    assert check_secrets(ctx).status == "warn"
    ctx.engine.dispose()
    downgrade(engine, "0013")
    assert _link_keys(engine) == [PLAIN_LINK]
