"""/metrics after a scripted story: every counter moved by exactly what the story did, and
the gauges read from the database say what waits. Protected by METRICS_TOKEN."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bot.config import Settings
from bot.context import AppContext, secrets_cipher
from bot.http.app import create_app
from bot.logs import configure_logging
from bot.outbound.webhooks import deliver_due_webhooks
from bot.scheduler.runner import Scheduler
from bot.stripe import recharge_now
from ledger import destinations
from ledger.api_keys import create_key
from ledger.db import make_engine, transaction
from ledger.models import Account
from tests.support.encryption import ENCRYPTION_KEY
from tests.support.factories import story
from tests.support.payments_support import WEBHOOK_SECRET, event, sign
from tests.support.webhook_receiver import *  # noqa: F403  (the webhook_receiver fixture)

TOKEN = "metrics-token-for-tests"


def scrape(client: TestClient) -> dict[tuple[str, tuple], float]:
    r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def moved(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.fixture
def served(db_url):
    settings = Settings(
        database_url=db_url, run_scheduler=False, metrics_token=TOKEN,
        stripe_webhook_secret=WEBHOOK_SECRET, slack_bot_token="",
        creditbot_encryption_keys=ENCRYPTION_KEY,
    )  # fmt: skip
    context = AppContext(settings=settings, engine=make_engine(db_url))
    with TestClient(create_app(context)) as client:
        yield context, client
    context.engine.dispose()


def test_metrics_need_the_token_and_are_off_without_one(served, sqlite_url):
    _, client = served
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorised"
    off = AppContext(settings=Settings(database_url=sqlite_url), engine=make_engine(sqlite_url))
    with TestClient(create_app(off)) as other:
        r = other.get("/metrics", headers={"Authorization": "Bearer "})
        assert r.status_code == 404 and r.json()["error"]["code"] == "metrics_off"
    off.engine.dispose()


def test_counters_match_a_scripted_story(served, webhook_receiver):
    context, client = served
    ids = story(context.sessions, plan=1000, wallet=0)
    secret = transaction(context.sessions, lambda s: create_key(s, ids["account"], "t")).secret
    _, hook_secret = transaction(
        context.sessions,
        lambda s: destinations.add_endpoint(
            s, ids["account"], webhook_receiver.url, cipher=secrets_cipher(context)
        ),
    )
    webhook_receiver.secret = hook_secret
    auth = {"Authorization": f"Bearer {secret}"}
    before = scrape(client)

    def message(key: str, quantity: int):
        body = {"agent_id": ids["a"], "quantity": quantity, "direction": "outbound"}
        return client.post("/v1/messages", json=body, headers={**auth, "Idempotency-Key": key})

    # Agent A (stop) takes 600 credits, then is refused twice; the first request is replayed.
    assert message("m1", 600).status_code == 200
    assert message("m2", 600).status_code == 402
    assert message("m3", 1).status_code == 402
    assert message("m1", 600).headers["Idempotent-Replayed"] == "true"
    # Agent B (use_balance, empty wallet) starts a call on the last plan credits.
    start = client.post("/v1/calls", json={"agent_id": ids["b"]},
                        headers={**auth, "Idempotency-Key": "c1"})  # fmt: skip
    assert start.status_code == 200
    # Stripe: one unsigned request, one signed event creditbot does not act on.
    assert client.post("/stripe/webhook", content=b"{}").status_code == 400
    payload = event("customer.created", {"id": "cus_1", "object": "customer"})
    signed = client.post("/stripe/webhook", content=payload,
                         headers={"Stripe-Signature": sign(payload)})  # fmt: skip
    assert signed.json()["outcome"] == "ignored"

    # Auto-recharge on without a saved card: the attempt fails at once.
    def turn_on(session):
        account = session.get(Account, ids["account"])
        account.auto_recharge_enabled = True
        account.auto_recharge_threshold_minor = 1000
        account.auto_recharge_amount_minor = 2000

    transaction(context.sessions, turn_on)
    assert recharge_now(context, ids["account"]).startswith("failed")
    # The scheduler delivers alerts: Slack has no token (fails), the webhook takes them.
    scheduler = Scheduler(context, jobs=[j for j in _jobs() if j.name == "alert_delivery"])
    assert scheduler.run_if_leader("alert_delivery").ok
    delivered = deliver_due_webhooks(context)
    after = scrape(client)
    scheduler.shutdown()

    assert moved(before, after, "creditbot_charges_total", unit="message", outcome="allowed") == 1
    assert moved(before, after, "creditbot_charges_total", unit="message", outcome="refused") == 2
    assert moved(before, after, "creditbot_charges_total", unit="message", outcome="replayed") == 1
    assert moved(before, after, "creditbot_charges_total", unit="call_minute",
                 outcome="allowed") == 1  # fmt: skip
    assert moved(before, after, "creditbot_charge_refusals_total", reason="plan_exhausted") == 2
    assert moved(before, after, "creditbot_charge_duration_seconds_count", route="messages") == 4
    assert moved(before, after, "creditbot_charge_duration_seconds_count", route="call_start") == 1
    # Every /v1 request goes through the journal's writer, on both databases: the 4 message
    # charges, the call's start and the key's one look-up (on its first request; the key is
    # then answered from memory). One at a time here, so 6 transactions of one request each.
    assert moved(before, after, "creditbot_group_commit_batch_size_sum") == 6
    assert moved(before, after, "creditbot_group_commit_batch_size_count") == 6
    assert moved(before, after, "creditbot_stripe_webhook_events_total", type="other",
                 outcome="ignored") == 1  # fmt: skip
    assert moved(before, after, "creditbot_stripe_webhook_events_total", type="unreadable",
                 outcome="refused") == 1  # fmt: skip
    assert moved(before, after, "creditbot_recharge_attempts_total",
                 outcome="missing_payment_method") == 1  # fmt: skip
    assert moved(before, after, "creditbot_scheduler_job_runs_total", job="alert_delivery",
                 outcome="ok") == 1  # fmt: skip
    assert after[("creditbot_scheduler_leader", ())] == 1
    # Slack failed its first alert (and held the rest); the receiver took every event.
    assert moved(before, after, "creditbot_alert_deliveries_total", channel="slack",
                 outcome="failed") == 1  # fmt: skip
    assert delivered == len(webhook_receiver.events) > 0
    assert moved(before, after, "creditbot_alert_deliveries_total", channel="webhook",
                 outcome="delivered") == delivered  # fmt: skip
    assert webhook_receiver.types() == ["alert.plan_exhausted", "alert.agent_stopped",
                                        "agent.stopped", "alert.recharge_failed"]  # fmt: skip
    slack_waiting = after[("creditbot_alert_backlog", (("channel", "slack"),))]
    assert slack_waiting == len([t for t in webhook_receiver.types() if t.startswith("alert.")])
    assert after[("creditbot_alert_backlog_failing", (("channel", "slack"),))] == 1
    assert after[("creditbot_alert_backlog", (("channel", "webhook"),))] == 0
    assert after[("creditbot_database_up", ())] == 1
    assert ("creditbot_scheduler_job_lag_seconds", (("job", "alert_delivery"),)) in after


def _jobs():
    from bot.scheduler.jobs import JOBS

    return JOBS


def _keyed_story(context: AppContext) -> tuple[dict, str]:
    """The story's ids (10 plan credits, an empty wallet) and an API key of its account."""
    ids = story(context.sessions, plan=10, wallet=0)
    secret = transaction(context.sessions, lambda s: create_key(s, ids["account"], "t")).secret
    return ids, secret


@contextmanager
def _charge_lines() -> Iterator[StringIO]:
    """The JSON log lines written in the block, a charge's own line included (logged at
    DEBUG below a 5xx: the hot path)."""
    stream = StringIO()
    handler = configure_logging("json", stream=stream)
    http_log = logging.getLogger("creditbot.http")
    http_log.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        http_log.setLevel(logging.NOTSET)
        logging.getLogger().removeHandler(handler)


def test_a_request_id_follows_a_request_into_the_journal_the_outbox_and_the_logs(served):
    from ledger.models import Entry, OutboxMessage

    context, client = served
    ids, secret = _keyed_story(context)
    with _charge_lines() as stream:
        r = client.post(
            "/v1/messages",
            json={"agent_id": ids["a"], "quantity": 10, "direction": "inbound"},
            headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "k",
                     "X-Request-Id": "trace-42"},
        )  # fmt: skip
        junk = client.get("/healthz", headers={"X-Request-Id": "bad id <script>"})
    assert r.status_code == 200 and r.headers["X-Request-Id"] == "trace-42"
    assert junk.headers["X-Request-Id"] != "bad id <script>"
    assert len(junk.headers["X-Request-Id"]) == 32, "an unsafe id is replaced by a new one"

    def stored(session):
        entry = session.query(Entry).filter(Entry.idempotency_key == "msg:k").one()
        kinds = [(m.kind, m.request_id) for m in session.query(OutboxMessage).all()]
        return entry.request_id, kinds

    entry_id, messages = transaction(context.sessions, stored)
    assert entry_id == "trace-42"
    assert messages and all(rid == "trace-42" for _, rid in messages)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [x for x in lines if x.get("path") == "/v1/messages"]
    assert access and access[0]["request_id"] == "trace-42" and access[0]["status"] == 200
    assert access[0]["logger"] == "creditbot.http" and "duration_ms" in access[0]


def test_a_charge_the_fast_route_hands_to_fastapi_keeps_its_one_request_id_and_line(served):
    """A charge the hot route does not accept (here a body that does not validate) is
    answered by the FastAPI route under the same request id, with one log line."""
    context, client = served
    ids, secret = _keyed_story(context)
    with _charge_lines() as stream:
        refused = client.post(
            "/v1/messages",
            json={"agent_id": ids["a"], "quantity": -1, "direction": "inbound"},
            headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "k1",
                     "X-Request-Id": "trace-43"},
        )  # fmt: skip
    assert refused.status_code == 422
    assert refused.headers.get_list("X-Request-Id") == ["trace-43"]
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [x for x in lines if x.get("logger") == "creditbot.http"]
    assert [(x["path"], x["status"], x["request_id"]) for x in access] == [
        ("/v1/messages", 422, "trace-43")
    ]


def test_at_info_a_charge_logs_no_line_of_its_own_and_other_requests_do(served):
    """The charge path's lines are DEBUG (the charge metrics count every answer); every
    other request keeps its INFO line."""
    context, client = served
    ids, secret = _keyed_story(context)
    stream = StringIO()
    handler = configure_logging("json", "info", stream=stream)
    try:
        charged = client.post(
            "/v1/messages",
            json={"agent_id": ids["a"], "quantity": 1, "direction": "inbound"},
            headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "k1"},
        )
        read = client.get("/v1/balance", headers={"Authorization": f"Bearer {secret}"})
    finally:
        logging.getLogger().removeHandler(handler)
    assert charged.status_code == 200 and read.status_code == 200
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    paths = [x["path"] for x in lines if x.get("logger") == "creditbot.http"]
    assert paths == ["/v1/balance"]


def test_requests_sharing_a_batch_of_the_writer_each_keep_their_own_request_id(served):
    """Eight charges at once, held back until they form one batch of the journal's writer
    (one transaction): each answer, journal entry and outbox row carries its own request's
    id, and the batch-size histogram saw a batch of more than four."""
    import asyncio
    import threading

    import httpx

    from ledger.models import Entry, OutboxMessage
    from tests.support.writer_batches import Held

    context, client = served
    ids = story(context.sessions, plan=1000, wallet=0)
    secret = transaction(context.sessions, lambda s: create_key(s, ids["account"], "t")).secret
    auth = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/balance", headers=auth).status_code == 200  # the key, now known
    before = scrape(client)
    app = client.app
    quantities = [1, 1, 1, 900, 1, 1, 1, 1]  # the 900 crosses the plan's low level

    async def charge_together() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await asyncio.gather(*(
                c.post("/v1/messages",
                       json={"agent_id": ids["a"], "quantity": q, "direction": "outbound"},
                       headers={**auth, "Idempotency-Key": f"k{n}", "X-Request-Id": f"req-{n}"})
                for n, q in enumerate(quantities)
            ))  # fmt: skip

    held = Held(app.state.api.writer, order=ids["account"])
    answers: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: answers.extend(asyncio.run(charge_together())))
    thread.start()
    held.until_queued(len(quantities))
    thread.join(30)
    after = scrape(client)

    assert [r.status_code for r in answers] == [200] * len(quantities)
    assert [r.headers["X-Request-Id"] for r in answers] == [f"req-{n}" for n in range(8)]

    def stored(session):
        entries = dict(session.query(Entry.idempotency_key, Entry.request_id).all())
        alerts = [rid for (rid,) in session.query(OutboxMessage.request_id).all()]
        return entries, alerts

    entries, alerts = transaction(context.sessions, stored)
    assert {k: v for k, v in entries.items() if k.startswith("msg:")} == {
        f"msg:k{n}": f"req-{n}" for n in range(8)
    }
    assert alerts and set(alerts) == {"req-3"}
    bucket = "creditbot_group_commit_batch_size_bucket"
    assert moved(before, after, bucket, le="+Inf") - moved(before, after, bucket, le="4.0") == 1


def test_the_scheduler_alone_serves_metrics_on_its_own_port(served):
    import httpx

    from bot.metrics import serve_metrics
    from tests.support.payments_support import free_port

    context, _ = served
    port = free_port()
    server = serve_metrics(context, port, host="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        assert httpx.get(url, timeout=5).status_code == 401
        r = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert r.status_code == 200 and "creditbot_alert_backlog" in r.text
        assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=5).status_code == 404
    finally:
        server.shutdown()
