"""The agent runtime API through HTTP: the customer document's story, keys and accounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from ledger.api_keys import create_key, revoke_key
from ledger.db import transaction
from ledger.units import credits
from ledger.verify import verify
from ledger.wallet import credit_wallet
from tests.support.api_helpers import make_api, other_account, snapshot
from tests.support.factories import NOW, story


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(NOW + timedelta(hours=1), tick=True):
        yield


@pytest.fixture
def ids(sessions):
    return story(sessions, plan=100, wallet=25)


@pytest.fixture
def api(db_url, ids):
    api = make_api(db_url, ids["account"])
    yield api
    api.context.engine.dispose()


def msg(api, agent, key, quantity=1, direction="outbound"):
    return api.post(
        "/v1/messages", {"agent_id": agent, "quantity": quantity, "direction": direction}, key
    )


def test_customer_story_end_to_end(api, ids):
    a, b = ids["a"], ids["b"]
    # Agents work: A sends 90 messages, paid from plan credits.
    r = msg(api, a, "a-1", quantity=90)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["allowed"] is True and body["reason"] is None
    assert body["from_plan_millicredits"] == credits(90) and body["from_wallet_millicredits"] == 0
    assert body["plan_balance_millicredits"] == credits(10)

    # B starts a call: its first minute (10 credits) takes the last plan credits.
    r = api.post("/v1/calls", {"agent_id": b}, "call-1")
    assert r.status_code == 200, r.text
    call = r.json()
    assert call["minute"] == 1 and call["hang_up"] is False
    assert call["from_plan_millicredits"] == credits(10)
    assert call["plan_balance_millicredits"] == 0
    call_id = call["call_id"]

    # Plan credits ran out: the `stop` agent is refused with 402 and the reason.
    r = msg(api, a, "a-2")
    assert r.status_code == 402
    assert r.json()["reason"] == "plan_exhausted"
    assert r.json()["error"]["code"] == "plan_exhausted"
    assert api.get(f"/v1/agents/{a}").json()["stop_reason"] == "plan_exhausted"
    # ... and keeps its reason on later requests.
    assert msg(api, a, "a-3").json()["reason"] == "plan_exhausted"

    # The `use_balance` agent goes on from the wallet: minutes 2 and 3 cost 10 each.
    for minute, wallet_left in ((2, 15), (3, 5)):
        r = api.post(f"/v1/calls/{call_id}/minutes", {"minute": minute})
        assert r.status_code == 200, r.text
        assert r.json()["agent_id"] == b  # the call's agent, though the request names none
        assert r.json()["from_wallet_millicredits"] == credits(10)
        assert r.json()["wallet_balance_millicredits"] == credits(wallet_left)
        assert r.json()["hang_up"] is False

    # Retrying a minute already paid charges nothing more.
    again = api.post(f"/v1/calls/{call_id}/minutes", {"minute": 3})
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["wallet_balance_millicredits"] == credits(5)

    # Minute 4 cannot be paid: the call is cut, the runtime is told to hang up.
    r = api.post(f"/v1/calls/{call_id}/minutes", {"minute": 4})
    assert r.status_code == 402
    assert r.json()["hang_up"] is True and r.json()["reason"] == "wallet_empty"
    assert r.json()["agent_id"] == b
    assert r.json()["wallet_balance_millicredits"] == credits(5)
    # Asking again gives the same answer; a later minute is refused.
    assert api.post(f"/v1/calls/{call_id}/minutes", {"minute": 4}).json()["hang_up"] is True
    assert api.post(f"/v1/calls/{call_id}/minutes", {"minute": 5}).status_code == 422
    end = api.post(f"/v1/calls/{call_id}/end", {"duration_seconds": 185})
    assert end.status_code == 200, end.text
    assert end.json()["minutes_charged"] == 3
    assert end.json()["charged_millicredits"] == credits(30)

    # Stopped for an empty wallet, B stays stopped until the wallet is credited.
    assert msg(api, b, "b-1").json()["reason"] == "wallet_empty"
    transaction(
        api.sessions,
        lambda s: credit_wallet(s, ids["account"], credits(50), key="top-1", kind="adjustment"),
    )
    r = msg(api, b, "b-2", direction="inbound")
    assert r.status_code == 200 and r.json()["from_wallet_millicredits"] == credits(1)

    balance = api.get("/v1/balance").json()
    assert balance["plan_balance_millicredits"] == 0
    assert balance["wallet_balance_millicredits"] == credits(54)
    assert balance["next_renewal_at"].startswith("2026-12-01")
    spend = {x["name"]: x["month_spend_millicredits"] for x in balance["agents"]}
    assert spend == {"A": credits(90), "B": credits(31)}
    status = {x["name"]: (x["status"], x["stop_reason"]) for x in balance["agents"]}
    assert status == {"A": ("stopped", "plan_exhausted"), "B": ("active", None)}
    assert transaction(api.sessions, verify) == []


def test_per_second_call_refunds_unused_part_of_last_minute(db_url, sessions):
    ids = story(sessions, plan=100, wallet=0, per_second=True)
    api = make_api(db_url, ids["account"])
    try:
        call_id = api.post("/v1/calls", {"agent_id": ids["a"]}, "c").json()["call_id"]
        assert api.post(f"/v1/calls/{call_id}/minutes", {"minute": 2}).status_code == 200
        end = api.post(f"/v1/calls/{call_id}/end", {"duration_seconds": 90})
        assert end.status_code == 200
        assert end.json()["refunded_millicredits"] == credits(5)
        assert end.json()["charged_millicredits"] == credits(15)
        # Ending again with the same duration is a replay; another duration is a conflict.
        assert api.post(f"/v1/calls/{call_id}/end", {"duration_seconds": 90}).json()["replayed"]
        conflict = api.post(f"/v1/calls/{call_id}/end", {"duration_seconds": 100})
        assert conflict.status_code == 409
        assert api.get("/v1/balance").json()["plan_balance_millicredits"] == credits(85)
    finally:
        api.context.engine.dispose()


def test_monthly_limit_stops_agent_and_raising_it_resumes(api, ids):
    r = api.client.post(
        "/v1/agents",
        json={"name": "C", "behaviour": "stop", "monthly_limit_millicredits": credits(5)},
        headers=api.auth(),
    )
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["status"] == "active" and c["monthly_limit_millicredits"] == credits(5)
    assert msg(api, c["id"], "c-1", quantity=5).status_code == 200
    refused = msg(api, c["id"], "c-2")
    assert refused.status_code == 402 and refused.json()["reason"] == "monthly_limit"
    r = api.client.patch(
        f"/v1/agents/{c['id']}",
        json={"monthly_limit_millicredits": None},
        headers=api.auth(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["resumed"] is True and r.json()["status"] == "active"
    assert r.json()["monthly_limit_millicredits"] is None
    assert msg(api, c["id"], "c-3").status_code == 200
    listed = api.get("/v1/agents").json()["agents"]
    assert [x["name"] for x in listed] == ["A", "B", "C"]
    assert listed[2]["month_spend_millicredits"] == credits(6)


def test_month_spend_starts_again_at_zero_in_the_accounts_new_month(db_url, sessions):
    # Kiritimati is UTC+14: its December starts at 10:00 UTC on 30 November.
    ids = story(sessions, plan=100, wallet=0, timezone="Pacific/Kiritimati")
    api = make_api(db_url, ids["account"])
    a = ids["a"]

    def spends():
        balance = api.get("/v1/balance").json()["agents"]
        return (
            api.get(f"/v1/agents/{a}").json()["month_spend_millicredits"],
            {
                x["id"]: x["month_spend_millicredits"]
                for x in api.get("/v1/agents").json()["agents"]
            }[a],
            {x["id"]: x["month_spend_millicredits"] for x in balance}[a],
        )

    try:
        assert msg(api, a, "nov", quantity=5).status_code == 200
        with time_machine.travel(datetime(2026, 11, 30, 9, 0, tzinfo=UTC)):  # 23:00 there
            assert spends() == (credits(5),) * 3
        with time_machine.travel(datetime(2026, 11, 30, 11, 0, tzinfo=UTC)):  # 1 December
            assert spends() == (0, 0, 0)
            renamed = api.client.patch(f"/v1/agents/{a}", json={"name": "A2"}, headers=api.auth())
            assert renamed.status_code == 200, renamed.text
            assert renamed.json()["month_spend_millicredits"] == 0
            assert msg(api, a, "dec").status_code == 200
            assert spends() == (credits(1),) * 3
    finally:
        api.context.engine.dispose()


def test_agent_ids_in_paths_are_never_names(api, ids):
    r = api.client.post("/v1/agents", json={"name": "424242"}, headers=api.auth())
    assert r.status_code == 201, r.text
    numbered = r.json()["id"]
    assert numbered != 424242
    assert api.get("/v1/agents/424242").json()["error"]["code"] == "unknown_agent"
    r = api.client.patch("/v1/agents/424242", json={"behaviour": "use_balance"}, headers=api.auth())
    assert r.status_code == 404
    agent = api.get(f"/v1/agents/{numbered}").json()
    assert agent["name"] == "424242" and agent["behaviour"] == "stop"


def test_authentication_comes_before_validation(api, ids):
    """Issue 10 item 7 (docs/api.md): a request without a valid key is answered 401 whatever
    its body or path -- invalid fields, malformed JSON, a bad id -- even with a key this
    server has seen and cached before it was revoked; only a request with a valid key is
    told what is wrong with its input."""
    old = transaction(api.sessions, lambda s: create_key(s, ids["account"], "old"))
    assert api.client.get("/v1/balance", headers=api.auth(old.secret)).status_code == 200
    transaction(api.sessions, lambda s: revoke_key(s, ids["account"], old.key.id))
    bad = (
        ("PATCH", f"/v1/agents/{ids['a']}", {"json": {"name": None}}, 422),
        ("POST", "/v1/messages", {"json": {"agent_id": ids["a"], "direction": "sideways"}}, 422),
        ("POST", "/v1/messages", {"content": b'{"agent_id": 1,'}, 400),
        ("POST", "/v1/calls", {"json": [ids["a"]]}, 422),
        ("POST", "/v1/calls/not-hex/minutes", {"json": {"minute": 0}}, 422),
        ("GET", "/v1/agents/0", {}, 422),
    )
    before = snapshot(api.sessions)
    for headers in (
        {},
        {"Authorization": "Bearer cb_nope"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        api.auth(old.secret),
    ):
        for method, path, body, _ in bad:
            r = api.client.request(
                method,
                path,
                headers={**headers, "Idempotency-Key": "k", "Content-Type": "application/json"},
                **body,
            )
            assert r.status_code == 401, (headers, method, path, r.text)
            assert r.json()["error"]["code"] == "unauthorized"
            assert r.headers["WWW-Authenticate"] == "Bearer"
    # With a valid key, the same requests are told what is wrong with them.
    for method, path, body, status in bad:
        r = api.client.request(
            method,
            path,
            headers=api.auth(**{"Idempotency-Key": "k", "Content-Type": "application/json"}),
            **body,
        )
        assert r.status_code == status, (method, path, r.text)
    r = api.client.patch(f"/v1/agents/{ids['a']}", json={"name": None}, headers=api.auth())
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", r.text
    r = api.client.post(
        "/v1/messages",
        json={"agent_id": ids["a"], "direction": "sideways"},
        headers=api.auth(**{"Idempotency-Key": "k"}),
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", r.text
    assert snapshot(api.sessions) == before


def test_replay_answers_the_first_result_and_charges_once(api, ids):
    first = msg(api, ids["a"], "same", quantity=7)
    before = snapshot(api.sessions)
    # Same key, same body with other key order and spacing: a replay.
    again = api.client.post(
        "/v1/messages",
        content=b'{ "direction": "outbound",  "quantity": 7, "agent_id": %d }' % ids["a"],
        headers=api.auth(**{"Idempotency-Key": "same", "Content-Type": "application/json"}),
    )
    assert again.status_code == 200
    assert again.json()["replayed"] is True
    assert again.json()["amount_millicredits"] == first.json()["amount_millicredits"]
    assert snapshot(api.sessions) == before
    # The same key with another body is a conflict, and changes nothing.
    for body in (
        {"agent_id": ids["a"], "quantity": 8, "direction": "outbound"},
        {"agent_id": ids["a"], "quantity": 7, "direction": "inbound"},
        {"agent_id": ids["b"], "quantity": 7, "direction": "outbound"},
    ):
        r = api.post("/v1/messages", body, "same")
        assert r.status_code == 409, body
        assert r.json()["error"]["code"] == "idempotency_conflict"
    # A call started under the key of a message is a different request space: no clash.
    assert api.post("/v1/calls", {"agent_id": ids["a"]}, "same").status_code == 200
    conflict = api.post("/v1/calls", {"agent_id": ids["b"]}, "same")
    assert conflict.status_code == 409
    assert transaction(api.sessions, verify) == []


def test_a_key_sees_only_its_own_account(api, ids):
    other = other_account(api.sessions)
    before = snapshot(api.sessions)
    theirs = api.auth(other["secret"], **{"Idempotency-Key": "x"})
    # Their key cannot read or charge our agent; ours cannot see theirs.
    r = api.client.get(f"/v1/agents/{ids['a']}", headers=theirs)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_agent"
    r = api.client.post(
        "/v1/messages",
        json={"agent_id": ids["a"], "direction": "outbound"},
        headers=theirs,
    )
    assert r.status_code == 404
    r = api.client.patch(
        f"/v1/agents/{ids['a']}", json={"behaviour": "use_balance"}, headers=theirs
    )
    assert r.status_code == 404
    assert api.get(f"/v1/agents/{other['agent']}").status_code == 404
    call_id = api.post("/v1/calls", {"agent_id": ids["a"]}, "mine").json()["call_id"]
    after_call = snapshot(api.sessions)
    r = api.client.post(f"/v1/calls/{call_id}/minutes", json={"minute": 2}, headers=theirs)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_call"
    r = api.client.post(f"/v1/calls/{call_id}/end", json={"duration_seconds": 5}, headers=theirs)
    assert r.status_code == 404
    assert snapshot(api.sessions) == after_call != before
    assert [x["name"] for x in api.client.get("/v1/agents", headers=theirs).json()["agents"]] == [
        "G"
    ]


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer cb_nope", "Bearer not-ours"],
)
def test_requests_without_a_valid_key_get_401(api, ids, authorization):
    before = snapshot(api.sessions)
    headers = {"Idempotency-Key": "k"}
    if authorization is not None:
        headers["Authorization"] = authorization
    for method, path, body in (
        ("POST", "/v1/messages", {"agent_id": ids["a"], "direction": "outbound"}),
        ("GET", "/v1/balance", None),
        ("GET", "/v1/agents", None),
        ("POST", "/v1/calls", {"agent_id": ids["a"]}),
    ):
        r = api.client.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["error"]["code"] == "unauthorized"
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert snapshot(api.sessions) == before


def test_a_revoked_key_stops_working(api, ids):
    assert api.get("/v1/balance").status_code == 200
    transaction(api.sessions, lambda s: revoke_key(s, ids["account"], 1))
    assert api.get("/v1/balance").status_code == 401


def test_openapi_document_and_docs_page(api):
    spec = api.client.get("/openapi.json").json()
    paths = spec["paths"]
    assert set(paths) >= {
        "/v1/agents",
        "/v1/agents/{agent_id}",
        "/v1/messages",
        "/v1/calls",
        "/v1/calls/{call_id}/minutes",
        "/v1/calls/{call_id}/end",
        "/v1/balance",
    }
    assert "402" in paths["/v1/messages"]["post"]["responses"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert api.client.get("/docs").status_code == 200
