"""Signed Stripe events creditbot cannot act on (issue 10, item 16): a malformed event is a
clear 400 that changes nothing; an event whose object Stripe does not know is asked about
again for a bounded time (503), then recorded and acknowledged (200) so Stripe stops."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from bot.http.app import create_app
from bot.stripe.webhooks import UNKNOWN_OBJECT_RETRY_SECONDS
from ledger.db import make_engine, transaction
from ledger.migrate import upgrade
from ledger.models.payments import StripeEvent
from tests.support.api_helpers import snapshot
from tests.support.factories import story
from tests.support.payments_support import (  # noqa: F401  (fixtures)
    checkout_fake,
    event,
    localstripe_url,
    payments_context,
    post_event,
    served,
    sign,
)


def _events(context):
    return transaction(context.sessions, lambda s: {e.id for e in s.query(StripeEvent)})


def _raw(data) -> bytes:
    return json.dumps(data).encode()


def _valid(event_type="payment_intent.succeeded", **changes):
    data = json.loads(event(event_type, {"id": "pi_unknown", "object": "payment_intent"}))
    data.update(changes)
    return data


MALFORMED = [
    pytest.param(_raw([_valid()]), id="json-array"),
    pytest.param(_raw("event"), id="json-string"),
    pytest.param(b"{", id="not-json"),
    pytest.param(b"[" * 100_000, id="deeply-nested"),
    pytest.param(_raw({k: v for k, v in _valid().items() if k != "data"}), id="no-data"),
    pytest.param(_raw(_valid(data=[])), id="data-array"),
    pytest.param(_raw(_valid(data={})), id="no-data-object"),
    pytest.param(_raw(_valid(data={"object": "pi_1"})), id="data-object-string"),
    pytest.param(_raw(_valid(data={"object": {"object": "payment_intent"}})), id="no-object-id"),
    pytest.param(_raw(_valid(data={"object": {"id": 5}})), id="object-id-number"),
    pytest.param(_raw({k: v for k, v in _valid().items() if k != "id"}), id="no-id"),
    pytest.param(_raw(_valid(id="evt with\x00nul")), id="id-with-nul"),
    pytest.param(_raw(_valid(type=["payment_intent.succeeded"])), id="type-array"),
    pytest.param(_raw(_valid(created="yesterday")), id="created-string"),
]


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """creditbot in process, its Stripe unreachable: a malformed event never gets that far."""
    path = tmp_path_factory.mktemp("stripe-events") / "creditbot.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    context = payments_context(f"sqlite:///{path}", "http://127.0.0.1:9")
    story(context.sessions)
    yield context, TestClient(create_app(context), raise_server_exceptions=False)
    context.engine.dispose()


@pytest.mark.parametrize("payload", MALFORMED)
def test_a_signed_but_malformed_event_is_a_clear_400(offline, payload):
    context, client = offline
    before = snapshot(context.sessions), _events(context)
    signed = {"Stripe-Signature": sign(payload), "Content-Type": "application/json"}
    response = client.post("/stripe/webhook", content=payload, headers=signed)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "malformed_event" and error["message"].startswith("The event")
    assert (snapshot(context.sessions), _events(context)) == before


def test_an_event_for_an_object_stripe_does_not_know_is_retried_for_a_bounded_time(served):  # noqa: F811
    context = served.context
    story(context.sessions)
    before = snapshot(context.sessions)
    hook = f"{served.url}/stripe/webhook"
    obj = {"id": "pi_nobody_knows", "object": "payment_intent"}
    fresh = json.loads(event("payment_intent.succeeded", obj, event_id="evt_fresh"))
    # While the event is young, Stripe is told to send it again (it retries on non-2xx).
    for _ in range(2):
        response = post_event(hook, _raw(fresh))
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "unknown_object"
        assert int(response.headers["Retry-After"]) > 0
    assert _events(context) == set()
    # Once it is older than the bound, it is recorded and acknowledged: Stripe stops.
    old = {**fresh, "created": int(time.time()) - UNKNOWN_OBJECT_RETRY_SECONDS - 60}
    response = post_event(hook, _raw(old))
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "outcome": "unknown_object"}
    assert _events(context) == {"evt_fresh"}
    assert post_event(hook, _raw(old)).json()["outcome"] == "duplicate"
    assert snapshot(context.sessions) == before  # nothing credited or changed
