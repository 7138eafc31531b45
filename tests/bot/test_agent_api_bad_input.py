"""Bad input to the agent API: each gets a clear JSON error body and changes nothing.

Validation happens before the database is touched, so most cases run on SQLite only; the
cases that reach the database (unknown and absurd ids) also run on PostgreSQL.
"""

from __future__ import annotations

import json

import pytest

from ledger.db import make_engine, make_session_factory
from tests.support.api_helpers import make_api, snapshot
from tests.support.factories import story
from tests.support.hostile_input import NOT_NAMES

BIG = 2**40  # larger than any id column: must be a clean 422, never a database error


@pytest.fixture
def api(sqlite_url):
    engine = make_engine(sqlite_url)
    api = make_api(sqlite_url, story(make_session_factory(engine), plan=100, wallet=25)["account"])
    yield api
    api.context.engine.dispose()
    engine.dispose()


@pytest.fixture
def ids():
    return {"account": 1, "a": 1, "b": 2}


def test_ids_reaching_the_database_on_every_database(db_url, sessions):
    ids = story(sessions, plan=100, wallet=25)
    api = make_api(db_url, ids["account"])
    try:
        before = snapshot(api.sessions)
        for path in (f"/v1/agents/{BIG}", f"/v1/agents/{2**31 - 1}", "/v1/agents/999"):
            _assert_error(api.get(path), 422 if path.endswith(str(BIG)) else 404)
        for body, status in (({"agent_id": 2**31 - 1}, 404), ({"agent_id": BIG}, 422)):
            _assert_error(api.post("/v1/calls", body, "c"), status)
            _assert_error(api.post("/v1/messages", {**body, "direction": "inbound"}, "m"), status)
        _assert_error(api.post(f"/v1/calls/{'f' * 64}/minutes", {"minute": 2}), 404)
        _assert_error(api.post(f"/v1/calls/{'f' * 64}/end", {"duration_seconds": 1}), 404)
        assert snapshot(api.sessions) == before
    finally:
        api.context.engine.dispose()


@pytest.fixture
def call_id(api, ids):
    return api.post("/v1/calls", {"agent_id": ids["b"]}, "the-call").json()["call_id"]


def _assert_error(r, status, code=None):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert error["message"] and isinstance(error["message"], str)
    if code:
        assert error["code"] == code, error


MESSAGE_CASES = [
    # (description, body, status, code)
    ("agent id as text", {"agent_id": "A", "direction": "outbound"}, 422, "invalid_request"),
    ("agent id as numeric text", {"agent_id": "1", "direction": "outbound"}, 422, None),
    ("agent id as float", {"agent_id": 1.0, "direction": "outbound"}, 422, None),
    ("agent id as bool", {"agent_id": True, "direction": "outbound"}, 422, None),
    ("agent id zero", {"agent_id": 0, "direction": "outbound"}, 422, None),
    ("agent id negative", {"agent_id": -3, "direction": "outbound"}, 422, None),
    ("agent id absurd", {"agent_id": BIG, "direction": "outbound"}, 422, None),
    ("agent id missing", {"direction": "outbound"}, 422, None),
    ("quantity zero", {"agent_id": 1, "quantity": 0, "direction": "outbound"}, 422, None),
    ("quantity negative", {"agent_id": 1, "quantity": -5, "direction": "outbound"}, 422, None),
    ("quantity absurd", {"agent_id": 1, "quantity": 10**30, "direction": "outbound"}, 422, None),
    ("quantity too many", {"agent_id": 1, "quantity": 10_001, "direction": "outbound"}, 422, None),
    ("quantity fraction", {"agent_id": 1, "quantity": 1.5, "direction": "outbound"}, 422, None),
    ("quantity text", {"agent_id": 1, "quantity": "2", "direction": "outbound"}, 422, None),
    ("quantity null", {"agent_id": 1, "quantity": None, "direction": "outbound"}, 422, None),
    ("direction unknown", {"agent_id": 1, "direction": "sideways"}, 422, None),
    ("direction missing", {"agent_id": 1}, 422, None),
    ("unknown field", {"agent_id": 1, "direction": "inbound", "units": 3}, 422, None),
    ("body is a list", [{"agent_id": 1, "direction": "inbound"}], 422, None),
    ("body is a number", 5, 422, None),
    ("unknown agent", {"agent_id": 999, "direction": "inbound"}, 404, "unknown_agent"),
]


@pytest.mark.parametrize(
    "body,status,code", [c[1:] for c in MESSAGE_CASES], ids=[c[0] for c in MESSAGE_CASES]
)
def test_bad_message_charges(api, body, status, code):
    before = snapshot(api.sessions)
    _assert_error(api.post("/v1/messages", body, "k1"), status, code)
    assert snapshot(api.sessions) == before


def test_validation_errors_name_each_field(api):
    r = api.post("/v1/messages", {"agent_id": "x", "quantity": 0}, "k")
    _assert_error(r, 422, "invalid_request")
    fields = {f["field"] for f in r.json()["error"]["fields"]}
    assert fields == {"agent_id", "quantity", "direction"}
    assert "quantity" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "raw",
    [b'{"agent_id": 1,', b"{'agent_id': 1}", b"not json", b'{"agent_id": 1} trailing', b"\xff\xfe"],
)
def test_malformed_json_is_400(api, raw):
    before = snapshot(api.sessions)
    r = api.client.post(
        "/v1/messages",
        content=raw,
        headers=api.auth(**{"Idempotency-Key": "k", "Content-Type": "application/json"}),
    )
    _assert_error(r, 400, "malformed_json")
    assert snapshot(api.sessions) == before


def test_body_without_json_content_type(api, ids):
    r = api.client.post(
        "/v1/messages",
        content=b'{"agent_id": %d, "direction": "inbound"}' % ids["a"],
        headers=api.auth(**{"Idempotency-Key": "k", "Content-Type": "text/plain"}),
    )
    _assert_error(r, 422, "invalid_body")


def test_empty_body(api):
    r = api.client.post(
        "/v1/messages",
        content=b"",
        headers=api.auth(**{"Idempotency-Key": "k", "Content-Type": "application/json"}),
    )
    _assert_error(r, 422, "invalid_request")


def test_oversized_body_is_413_with_or_without_content_length(api, ids):
    before = snapshot(api.sessions)
    padding = "x" * (70 * 1024)
    body = {"agent_id": ids["a"], "direction": "inbound", "pad": padding}
    _assert_error(api.post("/v1/messages", body, "big"), 413, "body_too_large")

    def chunks():
        yield b'{"agent_id": 1, "direction": "inbound", "pad": "'
        for _ in range(70):
            yield b"y" * 1024
        yield b'"}'

    r = api.client.post(
        "/v1/messages",
        content=chunks(),
        headers=api.auth(**{"Idempotency-Key": "big2", "Content-Type": "application/json"}),
    )
    _assert_error(r, 413, "body_too_large")
    assert snapshot(api.sessions) == before
    # Just under the limit is judged on its content instead.
    body["pad"] = "x" * 1000
    _assert_error(api.post("/v1/messages", body, "small"), 422, "invalid_request")


@pytest.mark.parametrize(
    "key",
    [None, "", "with space", "x" * 129, "tab\tinside"],
    ids=["missing", "empty", "space", "too-long", "tab"],
)
def test_bad_idempotency_keys(api, ids, key):
    before = snapshot(api.sessions)
    headers = api.auth()
    if key is not None:
        headers["Idempotency-Key"] = key
    r = api.client.post(
        "/v1/messages", json={"agent_id": ids["a"], "direction": "inbound"}, headers=headers
    )
    _assert_error(r, 422, "invalid_request")
    assert "Idempotency-Key" in r.json()["error"]["message"]
    assert snapshot(api.sessions) == before


CALL_CASES = [
    ("minute one", "minutes", {"minute": 1}, 422, "invalid_request"),
    ("minute zero", "minutes", {"minute": 0}, 422, None),
    ("minute absurd", "minutes", {"minute": 10**12}, 422, None),
    ("minute text", "minutes", {"minute": "2"}, 422, None),
    ("minute skipped", "minutes", {"minute": 5}, 422, "invalid_input"),
    ("minute missing", "minutes", {}, 422, None),
    ("negative duration", "end", {"duration_seconds": -1}, 422, None),
    ("absurd duration", "end", {"duration_seconds": 10**9}, 422, None),
    ("duration float", "end", {"duration_seconds": 60.5}, 422, None),
]


@pytest.mark.parametrize(
    "action,body,status,code", [c[1:] for c in CALL_CASES], ids=[c[0] for c in CALL_CASES]
)
def test_bad_call_requests(api, call_id, action, body, status, code):
    before = snapshot(api.sessions)
    _assert_error(api.post(f"/v1/calls/{call_id}/{action}", body), status, code)
    assert snapshot(api.sessions) == before


@pytest.mark.parametrize("path_id", ["0123456789abcdef0123456789abcdef", "nothex!", "a" * 65])
def test_unknown_or_malformed_call_id(api, path_id):
    r = api.post(f"/v1/calls/{path_id}/minutes", {"minute": 2})
    _assert_error(r, 404 if path_id.startswith("0123") else 422)


def test_call_start_for_unknown_agent(api):
    before = snapshot(api.sessions)
    _assert_error(api.post("/v1/calls", {"agent_id": 4242}, "c"), 404, "unknown_agent")
    _assert_error(api.post("/v1/calls", {"agent_id": BIG}, "c"), 422)
    _assert_error(api.post("/v1/calls", {}, "c"), 422)
    assert snapshot(api.sessions) == before


AGENT_CASES = [
    ("empty name", {"name": ""}, 422, "invalid_request"),
    ("blank name", {"name": "   "}, 422, "invalid_input"),
    ("long name", {"name": "n" * 101}, 422, None),
    ("name as number", {"name": 5}, 422, None),
    ("duplicate name", {"name": "A"}, 422, "invalid_input"),
    ("unknown behaviour", {"name": "C", "behaviour": "maybe"}, 422, None),
    ("zero limit", {"name": "C", "monthly_limit_millicredits": 0}, 422, None),
    ("negative limit", {"name": "C", "monthly_limit_millicredits": -1000}, 422, None),
    ("absurd limit", {"name": "C", "monthly_limit_millicredits": 10**20}, 422, None),
    ("limit as text", {"name": "C", "monthly_limit_millicredits": "500"}, 422, None),
    ("unknown field", {"name": "C", "colour": "red"}, 422, None),
]


@pytest.mark.parametrize(
    "body,status,code", [c[1:] for c in AGENT_CASES], ids=[c[0] for c in AGENT_CASES]
)
def test_bad_agent_creation(api, body, status, code):
    before = snapshot(api.sessions)
    _assert_error(api.client.post("/v1/agents", json=body, headers=api.auth()), status, code)
    assert snapshot(api.sessions) == before


@pytest.mark.parametrize(
    "body,status",
    [
        ({"name": None}, 422),
        ({"behaviour": None}, 422),
        ({"behaviour": "always"}, 422),
        ({"monthly_limit_millicredits": 0}, 422),
        ({"name": "B"}, 422),
        ({"status": "active"}, 422),
    ],
)
def test_bad_agent_updates(api, ids, body, status):
    before = snapshot(api.sessions)
    r = api.client.patch(f"/v1/agents/{ids['a']}", json=body, headers=api.auth())
    _assert_error(r, status)
    assert snapshot(api.sessions) == before


@pytest.mark.parametrize("path", ["/v1/agents/0", f"/v1/agents/{BIG}", "/v1/agents/abc"])
def test_bad_agent_ids_in_path(api, path):
    _assert_error(api.get(path), 422)


def test_unknown_agent_in_path(api):
    _assert_error(api.get("/v1/agents/777"), 404, "unknown_agent")
    r = api.client.patch("/v1/agents/777", json={"behaviour": "stop"}, headers=api.auth())
    _assert_error(r, 404, "unknown_agent")


def test_unknown_route_and_method(api):
    _assert_error(api.get("/v1/nothing"), 404, "not_found")
    _assert_error(api.client.delete("/v1/balance", headers=api.auth()), 405, "method_not_allowed")


def test_database_busy_is_503_and_a_bug_is_a_json_500(api, ids, monkeypatch):
    from fastapi.testclient import TestClient
    from sqlalchemy.exc import OperationalError

    import bot.http.api.messages as messages

    def busy(*args, **kwargs):
        raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))

    monkeypatch.setattr(messages, "charge", busy)
    body = {"agent_id": ids["a"], "direction": "inbound"}
    r = api.post("/v1/messages", body, "busy")
    _assert_error(r, 503, "busy")
    assert r.headers["Retry-After"] == "1"

    def bug(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(messages, "charge", bug)
    client = TestClient(api.app, raise_server_exceptions=False)
    r = client.post("/v1/messages", json=body, headers=api.auth(**{"Idempotency-Key": "bug"}))
    _assert_error(r, 500, "internal_error")
    assert "boom" not in r.text


def test_names_with_control_characters_are_422_on_every_database(db_url, sessions):
    # Issue 10 item 15: NUL in a name gave 500 on PostgreSQL.
    ids = story(sessions, plan=100, wallet=25)
    api = make_api(db_url, ids["account"])
    try:
        before = snapshot(api.sessions)
        headers = {**api.auth(), "Content-Type": "application/json"}
        for bad in NOT_NAMES:
            body = json.dumps({"name": bad})  # ASCII with \u escapes, as a runtime sends it
            created = api.client.post("/v1/agents", content=body, headers=headers)
            renamed = api.client.patch(f"/v1/agents/{ids['a']}", content=body, headers=headers)
            for answer in (created, renamed):
                _assert_error(answer, 422)  # the ledger's check, or JSON's (a lone surrogate)
                assert answer.json()["error"]["code"] in ("invalid_input", "invalid_request")
        assert snapshot(api.sessions) == before
        assert [a["name"] for a in api.get("/v1/agents").json()["agents"]] == ["A", "B"]
    finally:
        api.context.engine.dispose()
