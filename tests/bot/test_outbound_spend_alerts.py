"""Spend controls' alerts beyond Slack: budget levels, the budget used up, recovered
balances reach webhook endpoints and email like every other alert, and agent runtimes hear
`agent.stopped` for each agent a used-up budget stops (Slack gets one alert for them all)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config import Settings
from bot.context import build_context, secrets_cipher
from bot.outbound.email import deliver_due_emails
from bot.outbound.events import TITLES, alert_text, subject
from bot.outbound.webhooks import deliver_due_webhooks
from ledger import destinations, outbox
from ledger.alert_levels import set_alert_levels
from ledger.audit import Actor
from ledger.budget import set_budget
from ledger.charges import charge
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.deliveries import Due
from ledger.models import Agent
from ledger.outbox import Alert
from ledger.units import credits
from ledger.wallet import credit_wallet
from tests.support.encryption import ENCRYPTION_KEY
from tests.support.factories import story
from tests.support.smtp_server import *  # noqa: F403  (the smtp_server fixture)
from tests.support.webhook_receiver import *  # noqa: F403  (the webhook_receiver fixture)

ADMIN = Actor.slack("UADMIN")


@pytest.fixture
def ctx(db_url, smtp_server):
    _, port = smtp_server
    # Slack is not configured: its alerts wait in the outbox, where the test reads them.
    context = build_context(
        Settings(database_url=db_url, slack_bot_token="", smtp_host="127.0.0.1",
                 smtp_port=port, smtp_from="creditbot@example.com", run_scheduler=False,
                 creditbot_encryption_keys=ENCRYPTION_KEY)
    )  # fmt: skip
    yield context
    context.engine.dispose()


def _destinations(ctx, ids, hook):
    def add(s):
        _, secret = destinations.add_endpoint(
            s, ids["account"], hook.url, cipher=secrets_cipher(ctx)
        )
        destinations.add_email(s, ids["account"], "finance@example.com")
        return secret

    hook.secret = transaction(ctx.sessions, add)


def _deliver_until_quiet(ctx, start):
    now = start
    for _ in range(6):
        deliver_due_webhooks(ctx, now=now)
        deliver_due_emails(ctx, now=now)
        now += timedelta(minutes=11)


def _slack_kinds(ctx):
    return transaction(ctx.sessions, lambda s: [m.kind for m in outbox.pending(s)])


def _charge(ctx, ids, agent, n, key):
    return transaction(
        ctx.sessions,
        lambda s: charge(s, ids["account"], ids[agent], "message", n, idempotency_key=key),
    )


def test_a_used_up_budget_reaches_webhooks_email_and_each_agents_runtime(
    ctx, webhook_receiver, smtp_server
):
    hook, (mailbox, _) = webhook_receiver, smtp_server
    ids = story(ctx.sessions, now=utcnow())
    _destinations(ctx, ids, hook)
    transaction(ctx.sessions, lambda s: set_budget(s, ids["account"], credits(100), actor=ADMIN))

    _charge(ctx, ids, "a", 80, "k1")  # 80% of the budget: its default level
    assert _charge(ctx, ids, "a", 20, "k2").allowed  # 100: used up, every agent stops
    statuses = transaction(ctx.sessions, lambda s: {a.stop_reason for a in s.query(Agent).all()})
    assert statuses == {"account_budget"}
    _deliver_until_quiet(ctx, utcnow())

    slack = _slack_kinds(ctx)
    assert slack == ["alert.budget_level", "alert.budget_reached"], "one alert for all agents"
    alerts = [t for t in hook.types() if t.startswith("alert.")]
    assert alerts == slack, "webhooks get exactly the alerts Slack gets"
    stops = [e.event["data"] for e in hook.events if e.event["type"] == "agent.stopped"]
    assert sorted((d["agent_id"], d["status"], d["reason"]) for d in stops) == [
        (ids["a"], "stopped", "account_budget"),
        (ids["b"], "stopped", "account_budget"),
    ]
    assert hook.forged == 0 and hook.repeats == 0
    subjects = [m["Subject"] for m in mailbox.to("finance@example.com")]
    assert subjects == [
        "creditbot · Acme: The agents passed an alert level of the monthly budget",
        "creditbot · Acme: The monthly budget is used up: every agent stopped",
    ], "email gets the alerts, not the runtimes' events"
    text = mailbox.to("finance@example.com")[1].get_body(("plain",)).get_content()
    assert text.startswith("The account reached its monthly budget (100 of 100 credits"), text

    # An admin removes the budget: both agents resume, and every medium hears it.
    transaction(ctx.sessions, lambda s: set_budget(s, ids["account"], None, actor=ADMIN))
    _deliver_until_quiet(ctx, utcnow())
    resumed = [e.event["data"] for e in hook.events if e.event["type"] == "agent.resumed"]
    assert sorted((d["agent_id"], d["previous_reason"], d["cause"]) for d in resumed) == [
        (ids["a"], "account_budget", "budget"),
        (ids["b"], "account_budget", "budget"),
    ]
    assert [t for t in hook.types() if t.startswith("alert.")] == _slack_kinds(ctx)
    assert len(mailbox.to("finance@example.com")) == 4


def test_a_budget_set_under_the_spend_stops_agents_a_runtime_listens_for(ctx, webhook_receiver):
    hook = webhook_receiver
    ids = story(ctx.sessions, now=utcnow())
    _, hook.secret = transaction(
        ctx.sessions,
        lambda s: destinations.add_endpoint(
            s, ids["account"], hook.url, cipher=secrets_cipher(ctx), event_types=["agent.*"]
        ),
    )
    _charge(ctx, ids, "b", 30, "k1")
    transaction(ctx.sessions, lambda s: set_budget(s, ids["account"], credits(20), actor=ADMIN))
    _deliver_until_quiet(ctx, utcnow())
    assert hook.types() == ["agent.stopped", "agent.stopped"]
    assert {e.event["data"]["agent_id"] for e in hook.events} == {ids["a"], ids["b"]}
    assert _slack_kinds(ctx) == ["alert.budget_reached"]


def test_recovered_balances_reach_webhooks_and_email(ctx, webhook_receiver, smtp_server):
    hook, (mailbox, _) = webhook_receiver, smtp_server
    ids = story(ctx.sessions, plan=0, wallet=0, now=utcnow())
    _destinations(ctx, ids, hook)
    transaction(
        ctx.sessions,
        lambda s: set_alert_levels(s, ids["account"], wallet=[credits(50)], actor=ADMIN),
    )

    def top_up(amount, key):
        transaction(ctx.sessions,
                    lambda s: credit_wallet(s, ids["account"], credits(amount), key=key))  # fmt: skip

    top_up(60, "t1")
    _charge(ctx, ids, "b", 15, "m1")  # 45 left: under 50
    top_up(30, "t2")  # 75: above every level again
    _deliver_until_quiet(ctx, utcnow())

    slack = _slack_kinds(ctx)
    assert slack[-2:] == ["alert.wallet_low", "alert.wallet_recovered"]
    assert [t for t in hook.types() if t.startswith("alert.")] == slack
    recovered = hook.events[-1].event
    assert recovered["data"]["wallet_balance"] == credits(75)
    last = mailbox.to("finance@example.com")[-1]
    assert last["Subject"] == "creditbot · Acme: The wallet is back above its alert levels"
    assert (
        last.get_body(("plain",))
        .get_content()
        .startswith("The wallet is back above its alert levels: 75 credits.")
    )


def test_every_alert_kind_has_an_email_subject_of_its_own():
    assert set(TITLES) == set(Alert)


def test_a_top_up_email_names_the_waiting_agents_as_typed():
    name = "R&D <ops> bot"
    row = Due(
        id=1, message_id=1, event_type="alert.topup_received", kind="alert.topup_received",
        payload={"credits": credits(50), "amount_minor": 5000, "wallet_balance": credits(50),
                 "waiting_agents": [{"id": 7, "name": name, "reason": "plan_exhausted"}]},
        created_at=datetime(2026, 11, 3, tzinfo=UTC), request_id=None, attempts=0,
        account_id=1, account_name="Acme", currency="USD", timezone="UTC",
        next_renewal_at=None, destination_id=1, address="finance@example.com",
    )  # fmt: skip
    text = alert_text(row)
    assert f" {name} (plan credits ran out)" in text, text
    assert "*" not in text and ":hourglass:" not in text and "&lt;" not in text
    assert subject(row) == "creditbot · Acme: Top-up received"
