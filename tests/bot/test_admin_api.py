"""The admin API: what billing admins do in Slack, for keys of the admin scope, with the
same validation, errors and idempotency as Slack and the CLI; a runtime key gets 403."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from bot.http.app import create_app
from bot.stripe.customers import ensure_customer, save_payment_method
from ledger.api_keys import PREFIX_LENGTH, create_key, revoke_key
from ledger.db import transaction
from ledger.models import Entry, OutboxMessage
from ledger.units import credits
from tests.support.factories import card_saved, story
from tests.support.payments_support import (  # noqa: F401  (fixtures)
    checkout_fake,
    localstripe_url,
    new_card,
    payments_context,
)

ADMIN_READS = ("/v1/account", "/v1/account/auto-recharge", "/v1/account/budget",
               "/v1/account/alert-levels", "/v1/topups", "/v1/recharges", "/v1/audit")  # fmt: skip


@dataclass
class AdminApi:
    client: TestClient
    context: object
    ids: dict[str, int]
    admin: str
    runtime: str

    def call(self, method: str, path: str, *, key: str | None = None, secret: str | None = None,
             **kw):  # fmt: skip
        headers = {"Authorization": f"Bearer {secret or self.admin}"}
        if key:
            headers["Idempotency-Key"] = key
        headers.update(kw.pop("headers", {}))
        return self.client.request(method, path, headers=headers, **kw)

    @property
    def sessions(self):
        return self.context.sessions


@pytest.fixture
def api(sqlite_url, checkout_fake):  # noqa: F811
    context = payments_context(sqlite_url, checkout_fake.url)
    ids = story(context.sessions, plan=100, wallet=0)

    def keys(s):
        admin = create_key(s, ids["account"], "platform", scope="admin").secret
        runtime = create_key(s, ids["account"], "runtime").secret
        return admin, runtime

    admin, runtime = transaction(context.sessions, keys)
    with TestClient(create_app(context)) as client:
        yield AdminApi(client, context, ids, admin, runtime)
    context.engine.dispose()


def test_a_runtime_key_is_refused_on_every_admin_route_and_keeps_its_own(api):
    for path in ADMIN_READS:
        refused = api.call("GET", path, secret=api.runtime)
        assert refused.status_code == 403, path
        assert refused.json()["error"]["code"] == "forbidden"
        assert "admin scope" in refused.json()["error"]["message"]
    writes = [("PUT", "/v1/account/budget", {"monthly_budget": "10"}),
              ("PATCH", "/v1/account", {"message_rate": "2"}),
              ("POST", "/v1/topups", {"amount": "50"})]  # fmt: skip
    for method, path, body in writes:
        assert api.call(method, path, secret=api.runtime, json=body, key="k1").status_code == 403
    budget = api.call("GET", "/v1/account/budget").json()
    assert budget["monthly_budget_millicredits"] is None, "nothing was changed"
    assert api.call("GET", "/v1/balance", secret=api.runtime).status_code == 200
    assert api.call("GET", "/v1/balance").status_code == 200, "an admin key is a runtime key too"
    assert api.call("GET", "/v1/account", secret="cb_unknown").status_code == 401


def test_a_revoked_admin_key_is_refused_at_once_though_this_server_knew_it(api):
    """The server keeps each key it has seen, with its scope; a revocation elsewhere (here,
    the CLI's ledger call) still refuses the next request, on admin and runtime routes."""
    assert api.call("GET", "/v1/account").status_code == 200  # known to the server now
    assert api.call("GET", "/v1/account", secret=api.runtime).status_code == 403
    acc = api.ids["account"]
    transaction(api.sessions, lambda s: revoke_key(s, acc, api.admin[:PREFIX_LENGTH]))
    assert api.call("GET", "/v1/account").status_code == 401
    refused = api.call("PUT", "/v1/account/budget", json={"monthly_budget": "10"})
    assert refused.status_code == 401
    assert api.call("GET", "/v1/balance").status_code == 401
    assert api.call("GET", "/v1/account", secret=api.runtime).status_code == 403, "its scope"
    assert api.call("GET", "/v1/balance", secret=api.runtime).status_code == 200


def test_settings_are_read_and_changed_with_the_clis_parsers_and_errors(api):
    settings = api.call("GET", "/v1/account").json()
    assert (settings["currency"], settings["message_rate_millicredits"]) == ("USD", credits(1))
    changed = api.call(
        "PATCH",
        "/v1/account",
        json={"message_rate": "2.5", "topup_min": "$5", "per_second_billing": True},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["message_rate_millicredits"], body["topup_min_minor"]) == (2500, 500)
    assert body["per_second_billing"] is True
    bad = api.call("PATCH", "/v1/account", json={"topup_max": "abc"})
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["field"] == "topup_max"
    assert "'abc' is not an amount" in bad.json()["error"]["message"]
    for typo in ("two", "1,0,0", "²"):  # the one credits parser refuses each, as the CLI does
        refused = api.call("PATCH", "/v1/account", json={"message_rate": typo})
        assert refused.status_code == 422, typo
    euros = api.call("PATCH", "/v1/account", json={"message_rate": "two"})
    assert (
        euros.status_code == 422 and euros.json()["error"]["fields"][0]["field"] == "message_rate"
    )
    assert api.call("GET", "/v1/account").json()["message_rate_millicredits"] == 2500


def test_the_budget_story_through_the_api(api):
    put = api.call("PUT", "/v1/account/budget", json={"monthly_budget": "12"})
    assert put.status_code == 200 and put.json()["monthly_budget_millicredits"] == credits(12)
    minute = api.call("POST", "/v1/messages", key="m1",
                      json={"agent_id": api.ids["a"], "quantity": 10, "direction": "outbound"})  # fmt: skip
    assert minute.status_code == 200
    over = api.call("POST", "/v1/messages", key="m2",
                    json={"agent_id": api.ids["b"], "quantity": 3, "direction": "outbound"})  # fmt: skip
    assert over.status_code == 402
    assert over.json()["reason"] == "account_budget"
    assert over.json()["error"]["code"] == "account_budget"
    assert "monthly budget" in over.json()["error"]["message"]
    last = api.call("POST", "/v1/messages", key="m3",
                    json={"agent_id": api.ids["a"], "quantity": 2, "direction": "inbound"})  # fmt: skip
    assert last.status_code == 200 and last.json()["agent_status"] == "stopped"
    balance = api.call("GET", "/v1/balance", secret=api.runtime).json()
    assert balance["month_spend_millicredits"] == credits(12)
    assert {a["stop_reason"] for a in balance["agents"]} == {"account_budget"}
    budget = api.call("GET", "/v1/account/budget").json()
    assert (budget["reached"], budget["left_millicredits"], budget["agents_stopped"]) == (
        True,
        0,
        2,
    )
    raised = api.call("PUT", "/v1/account/budget", json={"monthly_budget": "100"}).json()
    assert (raised["reached"], raised["agents_stopped"]) == (False, 0)
    bad = api.call("PUT", "/v1/account/budget", json={"monthly_budget": "-5"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "budget"


def test_auto_recharge_to_a_target_and_what_it_would_cost_now(api):
    card_saved(api.sessions, api.ids["account"])
    add = api.call("PUT", "/v1/account/auto-recharge",
                   json={"enabled": True, "threshold": "50", "amount": "20"})  # fmt: skip
    assert add.status_code == 200, add.text
    # $20 cannot lift the empty wallet back to $50: a recharge now charges what does.
    assert (add.json()["amount_minor"], add.json()["recharge_now_minor"]) == (2000, 5000)
    saved = api.call("PUT", "/v1/account/auto-recharge",
                     json={"enabled": True, "mode": "target", "threshold": "20", "target": "$75"})  # fmt: skip
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert (body["mode"], body["threshold_minor"], body["target_minor"]) == ("target", 2000, 7500)
    assert body["recharge_now_minor"] == 7500, "the wallet is empty: the whole target"
    low_target = api.call("PUT", "/v1/account/auto-recharge",
                          json={"enabled": True, "mode": "target", "threshold": "20", "target": "10"})  # fmt: skip
    assert low_target.status_code == 422
    assert low_target.json()["error"]["fields"][0]["field"] == "target"


def test_alert_levels_are_changed_per_kind(api):
    changed = api.call("PATCH", "/v1/account/alert-levels",
                       json={"plan_percent": [5, 50, 20], "wallet_credits": ["1,000", "200"]})  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"plan_percent": [50, 20, 5], "wallet_millicredits": [1_000_000, 200_000],
                              "limit_percent": [80, 100], "budget_percent": [80, 100]}  # fmt: skip
    bad = api.call("PATCH", "/v1/account/alert-levels", json={"wallet_credits": ["lots"]})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "wallet"
    assert api.call("PATCH", "/v1/account/alert-levels",
                    json={"plan_percent": [0]}).status_code == 422  # fmt: skip


def test_a_checkout_top_up_is_started_once_per_key(api, checkout_fake):  # noqa: F811
    ensure_customer(api.context, api.ids["account"])
    first = api.call("POST", "/v1/topups", key="t-1", json={"amount": "25.00"})
    assert first.status_code == 201, first.text
    assert first.json()["checkout_url"].startswith(checkout_fake.url)
    assert (first.json()["amount_minor"], first.json()["replayed"]) == (2500, False)
    again = api.call("POST", "/v1/topups", key="t-1", json={"amount": "25.00"})
    assert again.json()["checkout_url"] == first.json()["checkout_url"] and again.json()["replayed"]
    assert len(checkout_fake.created) == 1, "one Stripe page for one key"
    other = api.call("POST", "/v1/topups", key="t-1", json={"amount": "30.00"})
    assert other.status_code == 409
    small = api.call("POST", "/v1/topups", key="t-2", json={"amount": "1"})
    assert (
        small.status_code == 422 and "smallest top-up is $10.00" in small.json()["error"]["message"]
    )
    assert api.call("POST", "/v1/topups", json={"amount": "25"}).status_code == 422, (
        "a key is needed"
    )
    listed = api.call("GET", "/v1/topups").json()["topups"]
    assert [(t["source"], t["status"], t["amount_minor"]) for t in listed] == [
        ("checkout", "open", 2500)
    ]
    assert listed[0]["requested_by"].startswith("api:cb_")


def test_a_saved_card_top_up_charges_once_per_key(api, localstripe_url):  # noqa: F811
    acc = api.ids["account"]
    none = api.call("POST", "/v1/topups/saved-card", key="c-1", json={"amount": "15"})
    assert none.status_code == 402 and none.json()["reason"] == "missing_payment_method"
    customer = ensure_customer(api.context, acc)
    save_payment_method(api.context, acc, customer, new_card(localstripe_url))
    paid = api.call("POST", "/v1/topups/saved-card", key="c-2", json={"amount": "15"})
    assert paid.status_code == 200, paid.text
    assert (paid.json()["status"], paid.json()["credited_millicredits"]) == (
        "succeeded",
        credits(1500),
    )
    again = api.call("POST", "/v1/topups/saved-card", key="c-2", json={"amount": "15"})
    assert again.status_code == 200 and again.json()["replayed"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.call("GET", "/v1/balance").json()["wallet_balance_millicredits"] == credits(1500)
    conflict = api.call("POST", "/v1/topups/saved-card", key="c-2", json={"amount": "16"})
    assert conflict.status_code == 409
    assert api.call("GET", "/v1/recharges").json() == {"recharges": []}


def test_the_audit_trail_names_the_key_that_changed_each_setting(api):
    api.call("PUT", "/v1/account/budget", json={"monthly_budget": "500"})
    api.call("PATCH", f"/v1/agents/{api.ids['a']}", json={"monthly_limit_millicredits": 50_000},
             secret=api.runtime)  # fmt: skip
    events = api.call("GET", "/v1/audit", params={"limit": 2}).json()["events"]
    assert [e["action"] for e in events] == ["agent", "budget"]
    assert {(e["actor_kind"], e["source"]) for e in events} == {("api_key", "api")}
    prefixes = {e["actor"] for e in events}
    assert len(prefixes) == 2 and all(p.startswith("cb_") for p in prefixes)
    assert events[1]["after"] == {"monthly_budget": credits(500)}
    older = api.call("GET", "/v1/audit", params={"before_id": events[1]["id"], "limit": 500})
    assert all(e["id"] < events[1]["id"] for e in older.json()["events"])
    assert api.call("GET", "/v1/audit", params={"limit": 501}).status_code == 422


def _counted(outcome):
    return REGISTRY.get_sample_value("creditbot_card_topups_total", {"outcome": outcome}) or 0.0


def test_admin_changes_carry_the_request_id_and_card_top_ups_are_counted(api, localstripe_url):  # noqa: F811
    acc = api.ids["account"]
    api.call("POST", "/v1/messages", key="m1",
             json={"agent_id": api.ids["b"], "quantity": 10, "direction": "outbound"})  # fmt: skip
    lowered = api.call("PUT", "/v1/account/budget", json={"monthly_budget": "5"},
                       headers={"X-Request-Id": "trace-budget"})  # fmt: skip
    assert lowered.status_code == 200 and lowered.headers["X-Request-Id"] == "trace-budget"

    before = {o: _counted(o) for o in ("succeeded", "missing_payment_method")}
    none = api.call("POST", "/v1/topups/saved-card", key="c-1", json={"amount": "15"})
    assert none.status_code == 402
    customer = ensure_customer(api.context, acc)
    save_payment_method(api.context, acc, customer, new_card(localstripe_url))
    paid = api.call("POST", "/v1/topups/saved-card", key="c-2", json={"amount": "15"},
                    headers={"X-Request-Id": "trace-topup"})  # fmt: skip
    assert paid.status_code == 200 and paid.headers["X-Request-Id"] == "trace-topup"
    api.call("POST", "/v1/topups/saved-card", key="c-2", json={"amount": "15"})  # a replay
    assert _counted("succeeded") - before["succeeded"] == 1
    assert _counted("missing_payment_method") - before["missing_payment_method"] == 1

    def stored(session):
        alerts = {m.kind: m.request_id for m in session.query(OutboxMessage).all()}
        entry = session.query(Entry).filter(Entry.kind == "topup").one()
        return alerts, entry.request_id

    alerts, topup_entry = transaction(api.sessions, stored)
    assert alerts["alert.budget_reached"] == "trace-budget"
    assert alerts["alert.topup_received"] == "trace-topup"
    assert topup_entry == "trace-topup"
