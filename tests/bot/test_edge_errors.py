"""Errors at the edges (issue 10, items 8, 9 and 16): one error body on every route, and a
database that is down or refuses writes answered 503 with a reason, never a driver's words.
"""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

import bot.http.slack_routes as slack_routes
from bot import stripe as stripe_gateway
from bot.context import AppContext, build_context
from bot.http.app import create_app
from ledger.db import make_engine
from tests.support.api_helpers import make_api, snapshot
from tests.support.factories import story
from tests.support.payments_support import WEBHOOK_SECRET, sign
from tests.support.payments_support import event as stripe_event
from tests.support.slack_harness import (  # noqa: F401  (fixture)
    fake_slack,
    settings_for,
    signed_headers,
)

MIB = 1024 * 1024
#: Words of a driver's error or of SQL that must never reach a client.
LEAKS = ("sqlite", "psycopg", "SELECT", "sqlalche.me", "connection to server", "Traceback")


def assert_error(response, status, code=None):
    """The one error shape: `{"error": {"code": str, "message": str}}` as JSON."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) - {"fields"} == {"code", "message"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert not any(word in response.text for word in LEAKS), response.text
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


@pytest.fixture
def app_context(sqlite_url, fake_slack):  # noqa: F811
    context = build_context(
        settings_for(sqlite_url, fake_slack, stripe_webhook_secret=WEBHOOK_SECRET)
    )
    yield context
    context.engine.dispose()


@pytest.fixture
def client(app_context):
    return TestClient(create_app(app_context), raise_server_exceptions=False)


def _chunks(size):
    for _ in range(size // MIB):
        yield b"x" * MIB


def test_every_route_answers_errors_in_the_same_shape(client):
    assert_error(client.get("/nowhere"), 404, "not_found")
    assert_error(client.post("/slack/nowhere", content=b"{}"), 404, "not_found")
    assert_error(client.get("/stripe/webhook"), 405, "method_not_allowed")
    assert_error(client.get("/slack/events"), 405, "method_not_allowed")
    assert_error(client.post("/healthz"), 405, "method_not_allowed")
    assert_error(client.put("/v1/balance"), 405, "method_not_allowed")
    assert_error(client.post("/slack/events", content=b"token=x"), 401, "invalid_signature")
    assert_error(client.post("/stripe/webhook", content=b"{}"), 400, "invalid_signature")
    for path in ("/slack/events", "/stripe/webhook", "/v1/messages"):
        assert_error(client.post(path, content=b"x" * 2 * MIB), 413, "body_too_large")
        assert_error(client.post(path, content=_chunks(2 * MIB)), 413, "body_too_large")
    assert_error(client.get("/slack/install"), 404, "oauth_not_configured")


def test_a_bug_on_any_route_is_a_500_in_the_same_shape(client, monkeypatch):
    def bug(*args, **kwargs):
        raise RuntimeError("boom: secret detail")

    monkeypatch.setattr(slack_routes, "dispatch_answering_on_ack", bug)
    monkeypatch.setattr(stripe_gateway, "handle_event", bug)
    body = b'{"type": "event_callback", "event": {"type": "app_mention"}}'
    signed = signed_headers(body, "application/json")
    error = assert_error(
        client.post("/slack/events", content=body, headers=signed), 500, "internal_error"
    )
    assert "boom" not in error["message"]
    payload = stripe_event("customer.created", {"id": "cus_1"})
    signed = {"Stripe-Signature": sign(payload), "Content-Type": "application/json"}
    error = assert_error(
        client.post("/stripe/webhook", content=payload, headers=signed), 500, "internal_error"
    )
    assert "boom" not in error["message"]  # its traceback goes to the log (uvicorn's)


def test_unconfigured_slack_and_stripe_answer_503_in_the_same_shape(sqlite_url, fake_slack):  # noqa: F811
    settings = settings_for(
        sqlite_url, fake_slack, slack_signing_secret="", stripe_webhook_secret=""
    )
    context = build_context(settings)
    try:
        client = TestClient(create_app(context), raise_server_exceptions=False)
        error = assert_error(client.post("/slack/events", content=b"{}"), 503)
        assert "SLACK_SIGNING_SECRET" in error["message"]
        assert_error(client.get("/slack/install"), 503)
        error = assert_error(client.post("/stripe/webhook", content=b"{}"), 503)
        assert "STRIPE_WEBHOOK_SECRET" in error["message"]
    finally:
        context.engine.dispose()


# -- a database that is down ---------------------------------------------------------------

UNREACHABLE = {
    "sqlite": "sqlite:////nonexistent-creditbot-dir/creditbot.db",
    "postgres": "postgresql+psycopg://creditbot:secret@127.0.0.1:9/creditbot",
}


@pytest.mark.parametrize("backend", sorted(UNREACHABLE))
def test_healthz_during_an_outage_says_database_unavailable_and_logs_the_rest(backend, caplog):
    url = UNREACHABLE[backend]
    context = AppContext(settings=settings_for(url, _NoSlack()), engine=make_engine(url))
    try:
        client = TestClient(create_app(context), raise_server_exceptions=False)
        with caplog.at_level(logging.WARNING):
            response = client.get("/healthz")
        assert_error(response, 503, "database_unavailable")
        assert response.json()["error"]["message"] == "database unavailable"
        logged = " ".join(r.getMessage() for r in caplog.records)
        assert (
            "unable to open database" if backend == "sqlite" else "Connection refused"
        ) in logged
    finally:
        context.engine.dispose()


class _NoSlack:
    api_url = "http://127.0.0.1:9/api/"


def test_v1_during_an_outage_is_503_database_unavailable_not_busy(sqlite_url):
    api = make_api(sqlite_url, story(_sessions(sqlite_url), plan=100)["account"])
    url = UNREACHABLE["postgres"]
    context = AppContext(settings=settings_for(url, _NoSlack()), engine=make_engine(url))
    try:
        client = TestClient(create_app(context), raise_server_exceptions=False)
        response = client.get("/v1/balance", headers=api.auth())
        assert_error(response, 503, "database_unavailable")
        assert response.headers["Retry-After"]
    finally:
        context.engine.dispose()
        api.context.engine.dispose()


def _sessions(url):
    from ledger.db import make_session_factory

    return make_session_factory(make_engine(url))


# -- a database that refuses writes --------------------------------------------------------


def refusing_writes(url: str):
    """An engine whose every connection refuses writes: SQLite's query_only (as a read-only
    file does), PostgreSQL's default_transaction_read_only (as a standby does)."""
    engine = make_engine(url)
    statement = (
        "PRAGMA query_only = ON"
        if engine.dialect.name == "sqlite"
        else "SET default_transaction_read_only = on"
    )

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_connection, record):
        cursor = dbapi_connection.cursor()
        cursor.execute(statement)
        cursor.close()
        if engine.dialect.name != "sqlite":
            dbapi_connection.commit()

    return engine


def test_v1_on_a_database_refusing_writes_is_503_with_the_reason(db_url, sessions, caplog):
    ids = story(sessions, plan=100, wallet=25)
    api = make_api(db_url, ids["account"])  # writes the API key while it still can
    before = snapshot(sessions)
    context = AppContext(settings=settings_for(db_url, _NoSlack()), engine=refusing_writes(db_url))
    try:
        client = TestClient(create_app(context), raise_server_exceptions=False)
        body = {"agent_id": ids["a"], "direction": "inbound"}
        with caplog.at_level(logging.WARNING):
            charged = client.post(
                "/v1/messages", json=body, headers=api.auth(**{"Idempotency-Key": "k"})
            )
            call = client.post(
                "/v1/calls",
                json={"agent_id": ids["b"]},
                headers=api.auth(**{"Idempotency-Key": "c"}),
            )
        for response in (charged, call):
            error = assert_error(response, 503, "database_read_only")
            assert "read-only" in error["message"]
            assert response.headers["Retry-After"]
        assert snapshot(sessions) == before
        assert any("read_only" in r.getMessage() for r in caplog.records)
    finally:
        context.engine.dispose()
        api.context.engine.dispose()
