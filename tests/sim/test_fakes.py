"""The simulation's fakes behave as the real services do where creditbot relies on them:
Stripe's idempotency keys, card errors and lost answers seen through the real `stripe`
library; Slack's 429s and lost answers seen through the real slack_sdk client; webhook
receivers that check signatures and fail as the real deliverer sees them; a crash between
commits leaves the commits before it and nothing after."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import pytest
import stripe
from slack_sdk.errors import SlackApiError
from sqlalchemy import text

import bot.outbound.webhooks
from bot.outbound.delivering import DeliveryFailed
from bot.slack.clients import retry_handlers
from ledger.db import make_engine, make_session_factory, transaction
from ledger.deliveries import Due
from ledger.destinations import new_secret
from sim.clock import SimClock
from sim.crash import CrashPoints, SimCrash
from sim.fake_receivers import FakeReceivers, event_of, hook_url, sim_opener
from sim.fake_slack import API_URL, BOT_TOKEN, FakeSlack, sim_web_client
from sim.fake_stripe import FakeStripe
from sim.stripe_http import SECRET_KEY, SimStripeHTTP

NOW = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


@pytest.fixture
def stripe_world():
    with SimClock(NOW) as clock:
        fake = FakeStripe(now=lambda: clock.now)
        http = SimStripeHTTP(fake, clock.sleep)
        api = stripe.StripeClient(SECRET_KEY, http_client=http, max_network_retries=1).v1
        customer = api.customers.create(params={"metadata": {"creditbot_account_id": "1"}})
        card = fake.new_card(customer.id, "4242")
        yield clock, fake, http, api, customer.id, card["id"]


def _charge(api, customer, card, key, amount=5000):
    return api.payment_intents.create(
        params={"amount": amount, "currency": "usd", "customer": customer, "payment_method": card,
                "off_session": True, "confirm": True, "metadata": {"creditbot_account_id": "1"}},
        options={"idempotency_key": key},
    )  # fmt: skip


def test_a_key_replays_its_first_answer_and_refuses_other_parameters(stripe_world):
    _, fake, _, api, customer, card = stripe_world
    first = _charge(api, customer, card, "k1")
    again = _charge(api, customer, card, "k1")
    assert first.id == again.id and first.status == "succeeded"
    assert len(fake.succeeded_payments()) == 1
    with pytest.raises(stripe.IdempotencyError):
        _charge(api, customer, card, "k1", amount=6000)


def test_an_answer_lost_twice_fails_the_call_but_the_money_was_taken(stripe_world):
    clock, fake, http, api, customer, card = stripe_world
    http.trouble.extend([("lost", "post /v1/payment_intents")] * 2)
    with pytest.raises(stripe.APIConnectionError):
        _charge(api, customer, card, "k2")
    assert clock.now > NOW  # the library's retry slept, on the simulated clock
    assert len(fake.succeeded_payments()) == 1
    assert _charge(api, customer, card, "k2").status == "succeeded"  # the same key: replayed
    assert len(fake.succeeded_payments()) == 1


def test_cards_decline_and_need_authentication_as_stripe_says(stripe_world):
    _, fake, _, api, customer, card = stripe_world
    fake.behaviour[card] = "decline"
    with pytest.raises(stripe.CardError) as declined:
        _charge(api, customer, card, "k3")
    assert declined.value.code == "card_declined"
    fake.behaviour[card] = "need_auth"
    with pytest.raises(stripe.CardError) as auth:
        _charge(api, customer, card, "k4")
    assert auth.value.code == "authentication_required"
    assert [e["type"] for e in fake.events].count("payment_intent.payment_failed") == 2


def test_slack_rate_limits_and_lost_answers_through_slack_sdk():
    with SimClock(NOW) as clock:
        fake = FakeSlack(now=lambda: clock.now)
        client = sim_web_client(fake)(
            token=BOT_TOKEN, base_url=API_URL, retry_handlers=retry_handlers()
        )
        fake.trouble.extend(["429:2"])
        client.chat_postMessage(channel="C1", text="retried after 2 s")
        assert [p.text for p in fake.posts] == ["retried after 2 s"]
        assert (clock.now - NOW).total_seconds() >= 2
        fake.trouble.extend(["429:60"])
        with pytest.raises(SlackApiError) as limited:
            client.chat_postMessage(channel="C1", text="too long to wait here")
        assert limited.value.response.headers["Retry-After"] == "60"
        fake.trouble.extend(["lost"])
        with pytest.raises(TimeoutError):
            client.chat_postMessage(channel="C1", text="posted, answer lost")
        assert fake.posts[-1].answer_lost and len(fake.posts) == 2


def test_a_crash_keeps_the_commits_before_it_and_loses_the_one_it_hits(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    sessions = make_session_factory(engine)
    crashes = CrashPoints()
    crashes.hook(sessions)
    transaction(sessions, lambda s: s.execute(text("CREATE TABLE t (n INTEGER)")))
    crashes.pending = (2, "job")
    crashes.step_starts("job:renewals")
    transaction(sessions, lambda s: s.execute(text("INSERT INTO t VALUES (1)")))
    with pytest.raises(SimCrash):
        transaction(sessions, lambda s: s.execute(text("INSERT INTO t VALUES (2)")))
    rows = transaction(sessions, lambda s: s.execute(text("SELECT n FROM t")).scalars().all())
    assert rows == [1]
    engine.dispose()


def _due(hook: int, secret: str, message_id: int = 42) -> Due:
    return Due(id=1, message_id=message_id, event_type="agent.stopped", kind="alert.agent_stopped",
               payload={"agent_id": 7, "agent_name": "bot", "reason": "plan_exhausted"},
               created_at=NOW, request_id=None, attempts=0, account_id=1, account_name="Acme",
               currency="USD", timezone="UTC", next_renewal_at=None, destination_id=hook,
               url=hook_url(hook), secret=secret)  # fmt: skip


def _post(row: Due) -> None:
    """Deliver `row`, signed with its secret (kept in clear in this fake row)."""
    bot.outbound.webhooks.post(row, row.secret or "")


def test_webhook_receivers_verify_signatures_and_fail_as_the_deliverer_sees_it():
    with SimClock(NOW) as clock:
        fake = FakeReceivers(now=lambda: clock.now)
        secret = new_secret()
        fake.open(1, secret)
        with mock.patch.object(bot.outbound.webhooks, "opener", sim_opener(fake)):
            _post(_due(1, secret))
            assert [event_of(r) for r in fake.receipts] == [(42, "agent.stopped")]
            assert fake.receipts[0].event["data"]["status"] == "stopped"
            fake.receiver(1).trouble.extend(["503", "timeout", "lost"])
            with pytest.raises(DeliveryFailed, match="HTTP 503"):
                _post(_due(1, secret, 43))
            with pytest.raises(DeliveryFailed, match="not reached"):
                _post(_due(1, secret, 43))
            assert len(fake.receipts) == 1  # neither reached the receiver
            with pytest.raises(DeliveryFailed, match="timed out"):
                _post(_due(1, secret, 43))
            assert fake.receipts[-1].answer_lost and event_of(fake.receipts[-1])[0] == 43
            assert fake.findings == []
            with pytest.raises(DeliveryFailed, match="HTTP 400"):
                _post(_due(1, new_secret(), 44))  # signed with another
            fake.receiver(1).removed = True
            with pytest.raises(DeliveryFailed, match="HTTP 410"):
                _post(_due(1, secret, 45))
        assert [f[0] for f in fake.findings] == [
            "webhooks signed with the endpoint's secret",
            "nothing delivered to a removed endpoint",
        ]
        assert len(fake.receipts) == 2
