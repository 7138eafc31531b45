"""Alerts as signed webhooks (Standard Webhooks): each endpoint gets each event exactly
once, signed, in order, through an outage of its own, whatever Slack and the other
endpoints do; agent runtimes get agent.stopped / agent.resumed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.config import Settings
from bot.context import build_context, secrets_cipher
from bot.outbound.webhooks import deliver_due_webhooks
from bot.slack.alerts import deliver_due_alerts
from ledger import destinations, outbox
from ledger.agents import update_agent
from ledger.charges import charge
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.errors import InvalidInput
from ledger.models.destinations import OutboxDelivery
from ledger.tracing import request_scope
from tests.support.encryption import ENCRYPTION_KEY
from tests.support.factories import story
from tests.support.webhook_receiver import *  # noqa: F403  (the webhook_receiver fixture)

ALERTS = ["alert.plan_low", "alert.plan_exhausted", "alert.agent_stopped", "agent.stopped"]


@pytest.fixture
def ctx(db_url):
    # Slack is not configured at all: its alerts fail, the webhooks must not care.
    context = build_context(
        Settings(database_url=db_url, slack_bot_token="", run_scheduler=False,
                 creditbot_encryption_keys=ENCRYPTION_KEY)
    )  # fmt: skip
    yield context
    context.engine.dispose()


def _endpoint(ctx, account_id, url, events=()):
    return transaction(
        ctx.sessions,
        lambda s: destinations.add_endpoint(
            s, account_id, url, cipher=secrets_cipher(ctx), event_types=events
        ),
    )


def _use_up_plan(ctx, ids, key="k1"):
    """Agent A (stop) spends the whole plan: plan low, plan exhausted, A stopped."""
    with request_scope("req-story-1"):
        return transaction(
            ctx.sessions,
            lambda s: charge(s, ids["account"], ids["a"], "message", 1000, idempotency_key=key),
        )


def _deliver_until_quiet(ctx, start, rounds=12):
    """Delivery rounds, each far enough after the last that every backoff has run out."""
    now = start
    for _ in range(rounds):
        deliver_due_webhooks(ctx, now=now)
        now += timedelta(minutes=11)
    return now


def test_each_event_arrives_once_signed_and_in_order_through_an_outage(ctx, webhook_receiver):
    hook = webhook_receiver
    now = utcnow()
    ids = story(ctx.sessions, now=now)
    endpoint, secret = _endpoint(ctx, ids["account"], hook.url)
    hook.secret = secret
    assert secret.startswith("whsec_")

    _use_up_plan(ctx, ids)
    now = utcnow()
    hook.fail_next(2)  # the receiver is down for its first two requests
    assert deliver_due_webhooks(ctx, now=now) == 0, "the first answer was 500"
    assert hook.answers[0][1] == 500 and len(hook.answers) == 1, "later events wait behind it"
    assert deliver_due_webhooks(ctx, now=now + timedelta(seconds=1)) == 0, "backoff not over"
    assert deliver_due_webhooks(ctx, now=now + timedelta(seconds=6)) == 0  # 500 again
    _deliver_until_quiet(ctx, now + timedelta(minutes=1))

    assert hook.types() == ALERTS
    assert hook.forged == 0 and hook.repeats == 0
    assert [status for _, status in hook.answers] == [500, 500, 200, 200, 200, 200]
    first = hook.events[0]
    assert first.event["data"]["account_name"] == "Acme"
    assert first.event["data"]["request_id"] == "req-story-1", "the request that caused it"
    assert first.headers["webhook-id"] == hook.answers[0][0], "a retry keeps its webhook-id"
    stopped = hook.events[3].event["data"]
    assert (stopped["agent_id"], stopped["status"], stopped["reason"]) == (
        ids["a"], "stopped", "plan_exhausted",
    )  # fmt: skip

    # Nothing is left to send, and nothing is sent again.
    assert deliver_due_webhooks(ctx, now=now + timedelta(days=1)) == 0
    assert len(hook.answers) == 6
    # Slack failed all along (no token): its alerts wait, untouched by the webhooks.
    assert deliver_due_alerts(ctx, now=now) == 0
    kinds = transaction(ctx.sessions, lambda s: [m.kind for m in outbox.pending(s)])
    assert kinds == ALERTS[:3]


def test_endpoints_are_independent_and_a_runtime_hears_only_agent_events(ctx, webhook_receiver):
    hook = webhook_receiver
    now = utcnow()
    ids = story(ctx.sessions, now=now)
    # An endpoint that never answers (nothing listens there) and a runtime's endpoint.
    _endpoint(ctx, ids["account"], "http://127.0.0.1:9/down")
    _, secret = _endpoint(ctx, ids["account"], hook.url, ["agent.*"])
    hook.secret = secret

    _use_up_plan(ctx, ids)
    now = utcnow()
    assert deliver_due_webhooks(ctx, now=now) == 1
    assert hook.types() == ["agent.stopped"]

    # An admin lets A use the wallet: it resumes, and the runtime hears it at once.
    transaction(ctx.sessions, lambda s: update_agent(s, ids["account"], ids["a"],
                                                     behaviour="use_balance", now=now))  # fmt: skip
    deliver_due_webhooks(ctx, now=now + timedelta(seconds=1))
    assert hook.types() == ["agent.stopped", "agent.resumed"]
    resumed = hook.events[1].event["data"]
    assert (resumed["status"], resumed["previous_reason"], resumed["cause"]) == (
        "active", "plan_exhausted", "settings",
    )  # fmt: skip

    def down(session):
        rows = session.query(OutboxDelivery).filter(OutboxDelivery.delivered_at.is_(None)).all()
        return sorted((r.event_type, r.attempts, bool(r.last_error)) for r in rows)

    waiting = transaction(ctx.sessions, down)
    # The dead endpoint holds its own deliveries (tried once, the rest behind it) only.
    assert [w[0] for w in waiting] == sorted([*ALERTS, "alert.agent_resumed", "agent.resumed"])
    assert sum(w[1] for w in waiting) == 1


def test_an_endpoint_added_later_gets_later_events_only_and_removal_drops_its_queue(ctx,
                                                                                  webhook_receiver):  # fmt: skip
    hook = webhook_receiver
    now = utcnow()
    ids = story(ctx.sessions, now=now)
    _use_up_plan(ctx, ids)
    now = utcnow()
    endpoint, secret = _endpoint(ctx, ids["account"], hook.url, ["alert.agent_resumed"])
    hook.secret = secret
    transaction(ctx.sessions, lambda s: update_agent(s, ids["account"], ids["a"],
                                                     behaviour="use_balance", now=now))  # fmt: skip
    transaction(ctx.sessions, lambda s: destinations.remove_endpoint(s, endpoint.id))
    assert deliver_due_webhooks(ctx, now=now) == 0 and hook.events == []
    again, secret = _endpoint(ctx, ids["account"], hook.url, ["alert.agent_stopped"])
    hook.secret = secret
    assert deliver_due_webhooks(ctx, now=now) == 0, "the stop happened before it was added"


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "http://example.com/hook", "https://user:pw@example.com/x", "nope"],
)
def test_endpoint_urls_must_be_https_or_this_machine(ctx, url):
    ids = story(ctx.sessions)
    with pytest.raises(InvalidInput):
        _endpoint(ctx, ids["account"], url)


def test_unknown_event_types_are_refused(ctx):
    ids = story(ctx.sessions)
    with pytest.raises(InvalidInput, match="not an event type"):
        _endpoint(ctx, ids["account"], "https://example.com/x", ["alert.plan_lo"])
