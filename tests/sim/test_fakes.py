"""The simulation's fakes behave as the real services do where creditbot relies on them:
Stripe's idempotency keys, card errors and lost answers seen through the real `stripe`
library; Slack's 429s and lost answers seen through the real slack_sdk client; a crash
between commits leaves the commits before it and nothing after."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import stripe
from slack_sdk.errors import SlackApiError
from sqlalchemy import text

from bot.slack.clients import retry_handlers
from ledger.db import make_engine, make_session_factory, transaction
from sim.clock import SimClock
from sim.crash import CrashPoints, SimCrash
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
