"""Prometheus metrics (`/metrics`, docs/operations.md): what creditbot counts as it works,
and what is read from the database when Prometheus scrapes.

Counted where it happens, in the process that does it (a counter or histogram costs a
lock and an addition, cheap enough for the charge path): charges and refusals, charge
latency, group-commit batch sizes, alert deliveries and failures per channel, recharge
attempts, saved-card top-ups, Stripe webhook events, scheduler runs and whether this process leads.

Read at scrape time, once per scrape, from the database (`DatabaseCollector`): the alert
backlog per channel and its oldest alert, each job's lag and last success, and how old the
leader's heartbeat is. These hold across processes and replicas by construction.

Several worker processes (`creditbot serve --workers N`): `serve` points
PROMETHEUS_MULTIPROC_DIR at a fresh directory before the workers start, each worker writes
its values there, and whichever worker answers a scrape adds them all up
(prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import hmac
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.context import AppContext
from ledger import deliveries, outbox_status
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.models.scheduler import SchedulerJob, SchedulerLeader

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

CHARGES = Counter(
    "creditbot_charges",
    "Charges answered by /v1, by unit and outcome (allowed, refused, replayed).",
    ["unit", "outcome"],
)
REFUSALS = Counter(
    "creditbot_charge_refusals", "Charges refused, by reason (a stop reason).", ["reason"]
)
CHARGE_SECONDS = Histogram(
    "creditbot_charge_duration_seconds",
    "Time to answer a charge request (/v1/messages, /v1/calls...), by route.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BATCH_SIZE = Histogram(
    "creditbot_group_commit_batch_size",
    "Requests committed together in one transaction by the batched writer.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
DELIVERIES = Counter(
    "creditbot_alert_deliveries",
    "Alert delivery attempts, by channel (slack, webhook, email) and outcome.",
    ["channel", "outcome"],
)
RECHARGE_ATTEMPTS = Counter(
    "creditbot_recharge_attempts",
    "Auto-recharge attempts, by the outcome Stripe answered at once (succeeded, processing,"
    " failed, retry) or missing_payment_method when no card could be charged.",
    ["outcome"],
)
CARD_TOPUPS = Counter(
    "creditbot_card_topups",
    "One-click top-ups with the saved card (Slack's Charge card, the admin API), by outcome"
    " (succeeded, processing, failed, missing_payment_method); replayed requests not counted.",
    ["outcome"],
)
STRIPE_EVENTS = Counter(
    "creditbot_stripe_webhook_events",
    "Stripe webhook events received, by type and outcome (processed, duplicate, ignored,"
    " refused, retry).",
    ["type", "outcome"],
)
JOB_RUNS = Counter(
    "creditbot_scheduler_job_runs", "Scheduler job runs in this process, by job and outcome.",
    ["job", "outcome"],
)  # fmt: skip
JOB_SECONDS = Histogram(
    "creditbot_scheduler_job_duration_seconds", "How long each scheduler job run took.", ["job"]
)
LEADER = Gauge(
    "creditbot_scheduler_leader",
    "1 while a scheduler of this process (or of any live worker) holds the leader lock.",
    multiprocess_mode="livemax",
)

#: Stripe event types are Stripe's words; any other is counted as "other" (bounded labels),
#: and a request that is not a signed event as "unreadable".
_EVENT_TYPES = frozenset(
    (
        "unreadable",
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.processing",
        "payment_intent.canceled",
        "charge.refunded",
        "charge.succeeded",
        "charge.failed",
        "invoice.paid",
        "invoice.created",
        "invoice.finalized",
    )
)


#: Labelled children already looked up, by metric and label values: `labels()` costs more
#: than the increment itself, and the charge path counts on every request.
_children: dict[tuple[object, tuple[str, ...]], Any] = {}


def _child(metric: Counter | Histogram, *labels: str) -> Any:
    key = (metric, labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def count_charge(unit: str, allowed: bool, reason: str | None, replayed: bool) -> None:
    """Count one charge answered (once per request: after the journal's writer answered)."""
    if replayed:
        _child(CHARGES, unit, "replayed").inc()
        return
    _child(CHARGES, unit, "allowed" if allowed else "refused").inc()
    if not allowed:
        _child(REFUSALS, reason or "refused").inc()


def charge_seconds(route: str) -> Any:
    """The latency histogram of a charge route (messages, call_start, call_minute)."""
    return _child(CHARGE_SECONDS, route)


def count_stripe_event(event_type: str, outcome: str) -> None:
    STRIPE_EVENTS.labels(event_type if event_type in _EVENT_TYPES else "other", outcome).inc()


# --- what the database says, at scrape time ------------------------------------------------


class DatabaseCollector(Collector):
    """Gauges read from the database once per scrape: backlogs, job lag, the leader."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = utcnow()
        try:
            facts = transaction(self.context.sessions, lambda s: _read(s, now))
        except Exception:  # noqa: BLE001 - a scrape says the database is down, not 500
            up = GaugeMetricFamily("creditbot_database_up", "1 when the database answered.")
            up.add_metric([], 0)
            yield up
            return
        yield from facts


def _read(session: Session, now: datetime) -> list[GaugeMetricFamily]:
    up = GaugeMetricFamily("creditbot_database_up", "1 when the database answered.")
    up.add_metric([], 1)
    backlog = GaugeMetricFamily(
        "creditbot_alert_backlog", "Alerts not yet delivered, by channel.", labels=["channel"]
    )
    failing = GaugeMetricFamily(
        "creditbot_alert_backlog_failing",
        "Undelivered alerts whose last attempt failed, by channel.",
        labels=["channel"],
    )
    oldest = GaugeMetricFamily(
        "creditbot_alert_oldest_undelivered_age_seconds",
        "Age of the oldest undelivered alert, by channel (0 when none waits).",
        labels=["channel"],
    )
    slack = outbox_status.backlog(session)
    backlog.add_metric(["slack"], slack.undelivered)
    failing.add_metric(["slack"], slack.failed)
    oldest.add_metric(["slack"], slack.oldest_age(now) or 0)
    for channel in deliveries.backlog(session, now=now):
        backlog.add_metric([channel.channel], channel.undelivered)
        failing.add_metric([channel.channel], channel.failed)
        oldest.add_metric([channel.channel], channel.oldest_age or 0)

    lag = GaugeMetricFamily(
        "creditbot_scheduler_job_lag_seconds",
        "How late each job is: seconds past its next planned run (0 when on time).",
        labels=["job"],
    )
    success = GaugeMetricFamily(
        "creditbot_scheduler_job_last_success_timestamp_seconds",
        "When each job last ran without error (Unix time).",
        labels=["job"],
    )
    failures = GaugeMetricFamily(
        "creditbot_scheduler_job_consecutive_failures",
        "Failed runs of each job since its last good one.",
        labels=["job"],
    )
    for job in session.execute(select(SchedulerJob).order_by(SchedulerJob.name)).scalars():
        late = (now - job.next_run_at).total_seconds() if job.next_run_at else 0
        lag.add_metric([job.name], max(0.0, late))
        if job.last_success_at is not None:
            success.add_metric([job.name], job.last_success_at.timestamp())
        failures.add_metric([job.name], job.consecutive_failures or 0)
    heartbeat = GaugeMetricFamily(
        "creditbot_scheduler_leader_heartbeat_age_seconds",
        "Seconds since the scheduler's leader last said it is alive (absent: no leader yet).",
    )
    leader = session.execute(select(SchedulerLeader).limit(1)).scalar_one_or_none()
    if leader is not None:
        heartbeat.add_metric([], (now - leader.heartbeat_at).total_seconds())
    return [up, backlog, failing, oldest, lag, success, failures, heartbeat]


# --- exposition ---------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess(base: Path) -> Path | None:
    """Point the workers (started after this) at an empty directory for their values:
    PROMETHEUS_MULTIPROC_DIR when the operator set it (emptied of old values), else a new
    one under `base`, returned so the caller removes it when serving ends."""
    given = multiprocess_dir()
    if given:
        for old in Path(given).glob("*.db"):
            old.unlink(missing_ok=True)
        return None
    path = base / f"creditbot-metrics-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def process_exited() -> None:
    """A worker stops: its live gauges (the leader) no longer count."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


def exposition(context: AppContext, database: DatabaseCollector | None = None) -> bytes:
    """The text Prometheus scrapes: this process's (or every worker's) values, then the
    database's."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        counted = generate_latest(registry)
    else:
        counted = generate_latest(REGISTRY)
    read = CollectorRegistry(auto_describe=False)
    read.register(database or DatabaseCollector(context))
    return counted + generate_latest(read)


def authorised(token: str, header: str) -> bool:
    """Whether an Authorization header carries the bearer `token` (compared in constant time)."""
    scheme, _, value = header.partition(" ")
    return (
        bool(token)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(value.strip().encode(), token.encode())
    )


def serve_metrics(context: AppContext, port: int, host: str = "0.0.0.0") -> WSGIServer:
    """/metrics on a port of its own, in a thread, for `creditbot scheduler` run alone
    (METRICS_PORT; the same METRICS_TOKEN). Returns the server (`shutdown()` stops it)."""
    database = DatabaseCollector(context)

    def app(environ: dict, start_response: Callable[..., object]) -> list[bytes]:
        token = context.settings.metrics_token
        if environ.get("PATH_INFO") != "/metrics" or not token:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if not authorised(token, environ.get("HTTP_AUTHORIZATION", "")):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"),
                                                ("WWW-Authenticate", 'Bearer realm="metrics"')])  # fmt: skip
            return [b"send Authorization: Bearer <METRICS_TOKEN>\n"]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [exposition(context, database)]

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = make_server(host, port, app, server_class=ThreadingWSGIServer, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Timer:
    """Seconds since it was made (time.perf_counter)."""

    __slots__ = ("start",)

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start
