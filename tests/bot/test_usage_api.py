"""GET /v1/usage: usage by agent, day and unit for the key's account, from the rollup."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from tests.support.api_helpers import make_api, other_account
from tests.support.factories import NOW, story


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(NOW + timedelta(hours=1), tick=True):
        yield


@pytest.fixture
def ids(sessions):
    return story(sessions, plan=100, wallet=25, now=NOW - timedelta(days=3))


@pytest.fixture
def api(db_url, ids):
    api = make_api(db_url, ids["account"])
    yield api
    api.context.engine.dispose()


def spend(api, ids):
    """Agent A: 3 messages yesterday; agent B: a call of 2 minutes today (plan runs dry: the
    second minute is half plan, half wallet) and a message."""
    from ledger.charges import charge
    from ledger.db import transaction

    def work(s):
        charge(
            s,
            ids["account"],
            ids["a"],
            "message",
            3,
            idempotency_key="y",
            now=NOW - timedelta(days=1),
        )
        charge(s, ids["account"], ids["b"], "message", 92, idempotency_key="big", now=NOW)

    transaction(api.sessions, work)
    assert api.post("/v1/calls", {"agent_id": ids["b"]}, "c1").status_code == 200


def test_usage_by_agent_day_and_unit(api, ids):
    spend(api, ids)
    answer = api.get("/v1/usage")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["from"], body["to"], body["timezone"]) == ("2026-10-12", "2026-11-10", "UTC")
    rows = [
        (r["agent"], r["day"], r["unit"], r["messages"], r["call_minutes"],
         r["from_plan_millicredits"], r["from_wallet_millicredits"])
        for r in body["rows"]
    ]  # fmt: skip
    assert rows == [
        ("A", "2026-11-09", "message", 3, 0, 3000, 0),
        ("B", "2026-11-10", "call_minute", 0, 1, 5000, 5000),
        ("B", "2026-11-10", "message", 92, 0, 92000, 0),
    ]
    assert body["total"]["total_millicredits"] == 105_000
    by_agent = api.get("/v1/usage", params={"group_by": "agent", "from": "2026-11-10"}).json()
    assert [(r["agent"], r["day"], r["total_millicredits"]) for r in by_agent["rows"]] == [
        ("B", None, 102_000)
    ]
    assert by_agent["to"] == "2026-11-10"  # 30 days from `from`, no later than today


@pytest.mark.parametrize(
    "params, field",
    [
        ({"from": "2026-11-10", "to": "2026-11-01"}, None),
        ({"from": "2000-01-01", "to": "2026-11-01"}, None),
        ({"from": "2026-13-01"}, "query.from"),
        ({"group_by": "week"}, None),
        ({"group_by": "agent;drop"}, "query.group_by"),
    ],
)
def test_bad_ranges_and_groups_are_422_in_the_one_error_shape(api, params, field):
    answer = api.get("/v1/usage", params=params)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] in ("invalid_request", "invalid_input") and error["message"]
    if field:
        assert [f["field"] for f in error["fields"]] == [field]


def test_usage_needs_a_key_and_sees_only_its_account(api, ids):
    spend(api, ids)
    assert api.client.get("/v1/usage").status_code == 401
    other = other_account(api.sessions)
    theirs = api.client.get("/v1/usage", headers={"Authorization": f"Bearer {other['secret']}"})
    assert theirs.status_code == 200 and theirs.json()["rows"] == []


def test_usage_is_in_the_openapi_document(api):
    operation = api.client.get("/openapi.json").json()["paths"]["/v1/usage"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"from", "to", "group_by"}
    assert {"200", "401", "422"} <= set(operation["responses"])


@pytest.mark.parametrize("params", [{"from": "9999-12-31"}, {"to": "0001-01-02"}])
def test_ranges_at_the_edge_of_the_calendar_are_422(api, params):
    answer = api.get("/v1/usage", params=params)
    assert answer.status_code == 422
    assert answer.json()["error"]["message"] == "Ask for days between the years 1 and 9999."
