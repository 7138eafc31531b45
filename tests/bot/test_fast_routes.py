"""The hot routes below FastAPI (bot/http/api/fast_routes.py) answer exactly what the
FastAPI routes answer: the same request, sent to an app with the fast route and to one
without it (each over its own database holding the same story), gets the same status,
headers and body bytes -- charges, replays, refusals and every error."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest
import time_machine
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from sqlalchemy.exc import OperationalError

import bot.http.api.messages
from bot.http.api.fast_routes import FastRoutes, is_json
from bot.http.api.messages import message_request_hash, request_hash
from bot.http.api.schemas import MAX_ID, BalanceOut, MessageCharge
from ledger.api_keys import create_key, revoke_key
from ledger.charges import MAX_QUANTITY
from ledger.db import make_session_factory, transaction
from ledger.units import credits
from tests.support.api_helpers import Api, make_api
from tests.support.factories import NOW, story

PATH = "/v1/messages"
CALLS = "/v1/calls"
MINUTES = "/v1/calls/{call}/minutes"


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(NOW + timedelta(hours=1), tick=True):
        yield


def without_fast_routes(api: Api) -> Api:
    """The same app with the hot routes left to FastAPI: its middleware stack without the
    front `fast_routes.install` put before it."""
    front = api.app.middleware_stack
    assert isinstance(front, FastRoutes)
    api.app.middleware_stack = front.app
    return api


class Twin:
    """An app with the fast route and one without, each over a database of its own holding
    the same story (same ids, balances and agents; keys of their own)."""

    def __init__(self, tmp_path) -> None:
        self.apis: list[Api] = []
        self.revoked: list[str] = []
        self.calls: list[str] = ["", ""]
        self.seen: list[set[bytes]] = [set(), set()]
        for name in ("fast", "fastapi"):
            url = f"sqlite:///{tmp_path}/{name}.db"
            from ledger.db import make_engine
            from ledger.migrate import upgrade

            engine = make_engine(url)
            upgrade(engine)
            self.ids = story(make_session_factory(engine), plan=20, wallet=5)
            engine.dispose()
            api = make_api(url, self.ids["account"])
            api.client = TestClient(api.app, raise_server_exceptions=False)
            self.revoked.append(self._revoked_key(api))
            self.apis.append(api)
        without_fast_routes(self.apis[1])

    def _revoked_key(self, api: Api) -> str:
        def work(s):
            made = create_key(s, self.ids["account"], "gone")
            revoke_key(s, self.ids["account"], made.key.id)
            return made.secret

        return transaction(api.sessions, work)

    def auth(self, n: int, kind: str) -> dict[str, str]:
        secret = {"good": self.apis[n].secret, "revoked": self.revoked[n]}.get(kind)
        if secret is not None:
            return {"Authorization": f"Bearer {secret}"}
        return {
            "none": {},
            "unknown": {"Authorization": "Bearer cb_unknownkey0000000000000000"},
            "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
            "empty": {"Authorization": ""},
        }[kind]

    def post(
        self, body: bytes, headers: dict[str, str], auth: str = "good", path: str = PATH
    ) -> tuple:
        """Both answers, as (status, headers but the request id, body). In `path`, "{call}"
        is the first call this test started in each database (their ids differ), and every
        call id is written "CALL" in the answers."""
        answers = []
        for n, api in enumerate(self.apis):
            r = api.client.post(
                path.replace("{call}", self.calls[n] or "0"),
                content=body,
                headers={**self.auth(n, auth), **headers},
            )
            if path == CALLS and r.status_code in (200, 402):
                call_id = r.json()["call_id"]
                self.seen[n].add(call_id.encode())
                if r.status_code == 200 and not self.calls[n]:
                    self.calls[n] = call_id
            kept = [(k, v) for k, v in r.headers.multi_items() if k != "x-request-id"]
            content = r.content  # call ids are 32 characters: the lengths agree
            for call_id in self.seen[n]:
                content = content.replace(call_id, b"CALL")
            answers.append((r.status_code, kept, content))
        return answers[0], answers[1]

    def get(self, path: str, auth: str = "good") -> tuple:
        """Both answers to a GET, as `post` gives them."""
        answers = []
        for n, api in enumerate(self.apis):
            r = api.client.get(path, headers=self.auth(n, auth))
            kept = [(k, v) for k, v in r.headers.multi_items() if k != "x-request-id"]
            answers.append((r.status_code, kept, r.content))
        return answers[0], answers[1]

    def close(self) -> None:
        for api in self.apis:
            api.context.engine.dispose()


@pytest.fixture
def twin(tmp_path):
    made = Twin(tmp_path)
    yield made
    made.close()


def charge(agent: int, quantity: int = 1, direction: str = "outbound") -> bytes:
    return json.dumps({"agent_id": agent, "quantity": quantity, "direction": direction}).encode()


JSON = {"Content-Type": "application/json"}


def test_the_story_answers_the_same_bytes_both_ways(twin):
    a, b = twin.ids["a"], twin.ids["b"]
    steps = [
        (charge(a, 5), {**JSON, "Idempotency-Key": "m1"}, "good"),  # allowed, from plan
        (charge(a, 5), {**JSON, "Idempotency-Key": "m1"}, "good"),  # replayed
        (charge(a, 6), {**JSON, "Idempotency-Key": "m1"}, "good"),  # another body: 409
        (charge(b, 18), {**JSON, "Idempotency-Key": "m2"}, "good"),  # plan, then the wallet
        (charge(a, 1), {**JSON, "Idempotency-Key": "m3"}, "good"),  # refused: 402
        (charge(a, 1), {**JSON, "Idempotency-Key": "m3"}, "good"),  # the refusal, replayed
        (charge(b, 50), {**JSON, "Idempotency-Key": "m4"}, "good"),  # wallet_empty
        (charge(999), {**JSON, "Idempotency-Key": "m5"}, "good"),  # unknown agent: 404
        (charge(a), {**JSON, "Idempotency-Key": "m6"}, "revoked"),  # 401
        (b"not json", {**JSON, "Idempotency-Key": "m6"}, "none"),  # 401 whatever the body
        (b"not json", {**JSON, "Idempotency-Key": "m6"}, "good"),  # 400 malformed
        (charge(a), JSON, "good"),  # no Idempotency-Key: 422
        (charge(a), {"Idempotency-Key": "m7"}, "good"),  # no Content-Type: 422
        (b"x" * (65 * 1024), {**JSON, "Idempotency-Key": "m8"}, "good"),  # 413
    ]
    statuses = []
    for body, headers, auth in steps:
        fast, slow = twin.post(body, headers, auth)
        assert fast == slow
        statuses.append(fast[0])
    assert statuses == [200, 200, 409, 200, 402, 402, 402, 404, 401, 401, 400, 422, 422, 413]


def test_a_call_answers_the_same_bytes_both_ways(twin):
    b = twin.ids["b"]
    start = json.dumps({"agent_id": b}).encode()
    steps = [
        (CALLS, start, {**JSON, "Idempotency-Key": "c1"}, "good"),  # started, minute 1
        (CALLS, start, {**JSON, "Idempotency-Key": "c1"}, "good"),  # replayed
        (CALLS, start, JSON, "good"),  # no Idempotency-Key: 422
        (MINUTES, b'{"minute": 2}', JSON, "good"),  # paid
        (MINUTES, b'{"minute": 2}', JSON, "good"),  # already paid: replayed
        (MINUTES, b'{"minute": 3}', JSON, "revoked"),  # 401
        (MINUTES, b'{"minute": 3}', {"Content-Type": "text/plain"}, "good"),  # 422
        (MINUTES, b'{"minute": 1}', JSON, "good"),  # out of range: 422
        (MINUTES, b'{"minute": 3, "x": 1}', JSON, "good"),  # unknown field: 422
        ("/v1/calls/abc123/minutes", b'{"minute": 2}', JSON, "good"),  # no such call: 404
        ("/v1/calls/ABC/minutes", b'{"minute": 2}', JSON, "good"),  # not a call id: 422
        (MINUTES, b'{"minute": 3}', JSON, "good"),  # plan used up, wallet short: hang up
        (MINUTES, b'{"minute": 4}', JSON, "good"),  # the call was cut
        (
            CALLS,
            json.dumps({"agent_id": 999}).encode(),
            {**JSON, "Idempotency-Key": "c2"},
            "good",
        ),  # fmt: skip
    ]
    statuses = []
    for path, body, headers, auth in steps:
        fast, slow = twin.post(body, headers, auth, path)
        assert fast == slow, (path, body)
        statuses.append(fast[0])
    assert statuses == [200, 200, 422, 200, 200, 401, 422, 422, 422, 404, 422, 402, 422, 404]


def test_the_balance_answers_the_same_bytes_both_ways_as_fastapi_serializes_it(twin):
    twin.post(charge(twin.ids["b"], 3), {**JSON, "Idempotency-Key": "before-balance"})
    for auth in ("good", "revoked", "none", "basic"):
        fast, slow = twin.get("/v1/balance", auth)
        assert fast == slow, auth
        assert fast[0] == (200 if auth == "good" else 401)
    fast, _ = twin.get("/v1/balance")
    # What FastAPI's response-model serialization wrote before the route answered bytes.
    model = BalanceOut.model_validate_json(fast[2])
    assert fast[2] == TypeAdapter(BalanceOut).dump_json(model, by_alias=True)
    assert model.plan_balance_millicredits == credits(17)


def test_a_bug_and_a_busy_database_answer_the_same_both_ways(twin, monkeypatch):
    a = twin.ids["a"]

    def locked(*args, **kwargs):
        raise OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(bot.http.api.messages, "charge", locked)
    fast, slow = twin.post(charge(a), {**JSON, "Idempotency-Key": "busy"})
    assert fast == slow and fast[0] == 503 and ("retry-after", "1") in fast[1]

    def bug(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(bot.http.api.messages, "charge", bug)
    fast, slow = twin.post(charge(a), {**JSON, "Idempotency-Key": "bug"})
    assert fast == slow and fast[0] == 500 and b"a bug" not in fast[2]


def test_a_well_formed_charge_never_reaches_fastapi_and_anything_else_does(twin):
    reached: list[str] = []
    app = twin.apis[0].app
    layer = app.middleware_stack
    while not isinstance(layer, FastRoutes):
        layer = layer.app
    inner = layer.app

    async def recording(scope, receive, send):
        reached.append(scope["path"])
        await inner(scope, receive, send)

    layer.app = recording
    headers = {**twin.auth(0, "good"), **JSON}
    ok = twin.apis[0].client.post(
        PATH, content=charge(twin.ids["a"]), headers={**headers, "Idempotency-Key": "f1"}
    )
    assert ok.status_code == 200 and reached == []
    bad = twin.apis[0].client.post(
        PATH, content=b'{"agent_id": "1"}', headers={**headers, "Idempotency-Key": "f2"}
    )
    assert bad.status_code == 422 and reached == [PATH]


# --- anything a client may send, both ways --------------------------------------------------

agent_ids = st.sampled_from([1, 2, 999, 0, -1, MAX_ID, MAX_ID + 1, 2**70])
quantities = st.one_of(
    st.sampled_from([1, 2, 0, -3, MAX_QUANTITY, MAX_QUANTITY + 1]), st.integers(1, 5)
)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["1", "outbound", "inbound", "OUTBOUND", "", "ünïcode"]),
    st.lists(st.integers(0, 3), max_size=2),
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "agent_id": st.one_of(agent_ids, values),
        "quantity": st.one_of(quantities, values),
        "direction": st.one_of(st.sampled_from(["inbound", "outbound"]), values),
        "minute": st.one_of(st.integers(1, 3), values),
        "extra": values,
    },
)


@st.composite
def bodies(draw, path: str) -> bytes:
    shapes = ["valid", "valid", "object", "object", "duplicate", "raw", "encoded"]
    shape = draw(st.sampled_from(shapes))
    if shape == "valid":  # what a runtime sends, within or past the limits
        if path == CALLS:
            return json.dumps({"agent_id": draw(agent_ids)}).encode()
        if path != PATH:
            return json.dumps({"minute": draw(st.integers(0, 4))}).encode()
        direction = draw(st.sampled_from(["inbound", "outbound"]))
        return charge(draw(agent_ids), draw(quantities), direction)
    if shape == "object":
        return json.dumps(draw(fields)).encode()
    if shape == "duplicate":  # a key twice: JSON parsers keep the last one
        first, second = draw(values), draw(st.one_of(agent_ids, values))
        return b'{"agent_id": %s, "agent_id": %s, "direction": "inbound"}' % (
            json.dumps(first).encode(),
            json.dumps(second).encode(),
        )
    if shape == "encoded":  # a valid charge in other clothes
        text = json.dumps({"agent_id": 1, "quantity": 1, "direction": "inbound"})
        how = draw(st.sampled_from(["bom", "utf-16", "spaces", "nan", "array", "trailing"]))
        return {
            "bom": b"\xef\xbb\xbf" + text.encode(),
            "utf-16": text.encode("utf-16"),
            "spaces": b" \n\t" + text.encode() + b" \r\n",
            "nan": b'{"agent_id": 1, "quantity": NaN, "direction": "inbound"}',
            "array": b"[" + text.encode() + b"]",
            "trailing": text.encode() + b"}",
        }[how]
    return draw(st.binary(max_size=40))


CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    " application/json ;x=1",
    "application/vnd.api+json",
    "text/plain",
    "",
    None,
]
# JSON twice as often, and a form body too.
content_types = st.sampled_from(
    ["application/json", *CONTENT_TYPES, "application/x-www-form-urlencoded"]
)
idempotency_keys = st.one_of(
    st.sampled_from(["k1", "k1", "k2", "", " ", "with space", "x" * 128, "x" * 129, "\x7f"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=8),
    st.none(),
)


KEYS = ["k1", "k1", "", " ", "with space", "x" * 128, "x" * 129, "\x7f", b"\xe9", None]


def test_every_header_a_valid_charge_may_come_with_gets_the_same_answer_both_ways(twin):
    statuses = set()
    for n, (key, content_type) in enumerate((k, c) for k in KEYS for c in CONTENT_TYPES):
        headers = {"Content-Type": content_type, "Idempotency-Key": key}
        headers = {k: v for k, v in headers.items() if v is not None}
        for auth in ("good", "revoked", "none"):
            fast, slow = twin.post(charge(twin.ids["b"], 1 + n % 2), headers, auth)
            assert fast == slow, (key, content_type, auth)
            statuses.add(fast[0])
    assert statuses == {200, 401, 409, 422}


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    path=st.sampled_from([PATH, PATH, CALLS, MINUTES, MINUTES, "/v1/calls/Z/minutes"]),
    content_type=content_types,
    key=idempotency_keys,
    auth=st.sampled_from(["good", "good", "good", "good", "revoked", "unknown", "none", "basic"]),
)
def test_any_request_gets_the_same_answer_both_ways(twin, data, path, content_type, key, auth):
    body = data.draw(bodies(path))
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if key is not None:
        headers["Idempotency-Key"] = key
    fast, slow = twin.post(body, headers, auth, path)
    assert fast == slow


@given(
    agent_id=st.integers(1, MAX_ID),
    quantity=st.integers(1, MAX_QUANTITY),
    direction=st.sampled_from(["inbound", "outbound"]),
)
def test_the_written_out_request_hash_is_the_canonical_one(agent_id, quantity, direction):
    body = MessageCharge(agent_id=agent_id, quantity=quantity, direction=direction)
    assert message_request_hash(body) == request_hash(PATH, body)


@pytest.mark.parametrize(
    ("value", "json_body"),
    [
        (b"application/json", True),
        (b"Application/JSON; charset=utf-8", True),
        (b" application/json ;x", True),
        (b"application/vnd.api+json", False),
        (b"text/json", False),
        (b"", False),
        (None, False),
    ],
)
def test_the_fast_route_takes_only_json_bodies(value, json_body):
    assert is_json(value) is json_body
