"""The outbox: side effects written with the change that caused them, delivered later.

Writers call `add` inside the ledger transaction. A deliverer (Slack alerts, Stripe
recharges) takes due messages with `take_due`, and marks each delivered or failed; a
failed message comes back after a backoff, so nothing is lost while Slack or Stripe is down.

An alert also gets, in the same transaction, one delivery row per webhook endpoint (per
event type it receives) and per email address of its account (ledger/deliveries.py
delivers them), so each of those gets it once, independently of Slack and of each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger.cycles import utcnow
from ledger.models import OutboxMessage
from ledger.models.destinations import AlertEmail, OutboxDelivery, WebhookEndpoint
from ledger.tracing import current_request_id

_outbox = OutboxMessage.__table__
_deliveries = OutboxDelivery.__table__


class Alert(StrEnum):
    """Alerts posted to the account's alert channel (rule 10). The value is the outbox
    kind; the Slack app renders each one."""

    PLAN_LOW = "alert.plan_low"
    PLAN_EXHAUSTED = "alert.plan_exhausted"
    PLAN_RECOVERED = "alert.plan_recovered"
    WALLET_LOW = "alert.wallet_low"
    WALLET_RECOVERED = "alert.wallet_recovered"
    #: An agent's monthly-limit levels: 80% and 100% keep their own kinds, others say theirs.
    LIMIT_LEVEL = "alert.limit_level"
    LIMIT_80 = "alert.limit_80"
    LIMIT_100 = "alert.limit_100"
    #: The account's monthly budget: a level below it, and reaching it (every agent stops).
    BUDGET_LEVEL = "alert.budget_level"
    BUDGET_REACHED = "alert.budget_reached"
    AGENT_STOPPED = "alert.agent_stopped"
    AGENT_RESUMED = "alert.agent_resumed"
    TOPUP_RECEIVED = "alert.topup_received"
    RECHARGE_SUCCEEDED = "alert.recharge_succeeded"
    RECHARGE_FAILED = "alert.recharge_failed"
    AUTO_RECHARGE_PAUSED = "alert.auto_recharge_paused"
    REFUND_SHORTFALL = "alert.refund_shortfall"
    CYCLE_RENEWED = "alert.cycle_renewed"


#: Every alert kind, and the prefix they share (what the Slack deliverer takes).
ALERT_KINDS = tuple(Alert)
ALERT_PREFIX = "alert."
#: A charge left the wallet under the auto-recharge threshold: the payments side acts on it.
RECHARGE_REQUESTED = "recharge.requested"


class AgentEvent(StrEnum):
    """What agent runtimes receive over webhooks when an agent stops or resumes: the state
    change itself, beside the alert people read (same moment, same message)."""

    STOPPED = "agent.stopped"
    RESUMED = "agent.resumed"


_RUNTIME_EVENTS = {Alert.AGENT_STOPPED: AgentEvent.STOPPED, Alert.AGENT_RESUMED: AgentEvent.RESUMED}
#: Every event type a webhook endpoint can receive: the alerts Slack gets, and the agents'.
WEBHOOK_EVENT_TYPES: tuple[str, ...] = (*ALERT_KINDS, *AgentEvent)


def webhook_events(kind: str) -> tuple[str, ...]:
    """The event types a message of `kind` is sent to webhooks as (none for non-alerts)."""
    if not kind.startswith(ALERT_PREFIX):
        return ()
    runtime = _RUNTIME_EVENTS.get(kind)
    return (kind, runtime) if runtime else (kind,)


def receives(event_types: list[str] | None, event_type: str) -> bool:
    """Whether an endpoint that asked for `event_types` (empty: all) gets `event_type`;
    `alert.*` and `agent.*` name a family."""
    if not event_types:
        return True
    family = event_type.split(".", 1)[0] + ".*"
    return event_type in event_types or family in event_types


def add(
    session: Session,
    account_id: int | None,
    kind: str,
    payload: dict[str, Any],
    *,
    now: datetime | None = None,
    dedup_key: str | None = None,
) -> bool:
    """Write one message in the caller's transaction (an alert with its deliveries to
    the account's webhook endpoints and email addresses). A message whose `dedup_key` was
    written before is not written again (a no-op, not an error that would roll back the
    caller's change); returns whether this call wrote it."""
    now = now or utcnow()
    values = {
        "account_id": account_id,
        "kind": kind,
        "payload": payload,
        "dedup_key": dedup_key,
        "attempts": 0,
        "created_at": now,
        "available_at": now,
        "request_id": current_request_id(),
    }
    events = webhook_events(kind) if account_id is not None else ()
    deliveries = _deliveries_of(session, account_id, events, now) if events else []
    if dedup_key is None:
        statement = insert(_outbox).values(**values)
        if not deliveries:
            session.execute(statement)
            return True
        message_id = session.execute(statement.returning(_outbox.c.id)).scalar_one()
    else:
        dialect_insert = _UPSERTS[session.get_bind().dialect.name]
        upsert = dialect_insert(_outbox).values(**values)
        upsert = upsert.on_conflict_do_nothing(index_elements=["dedup_key"])
        written = session.execute(upsert.returning(_outbox.c.id)).first()
        if written is None:
            return False
        message_id = written[0]
    if deliveries:
        session.execute(insert(_deliveries), [{**d, "message_id": message_id} for d in deliveries])
    return True


#: INSERT ... ON CONFLICT DO NOTHING, by database (creditbot runs on these two).
_UPSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def add_runtime_event(
    session: Session,
    account_id: int,
    event: AgentEvent,
    payload: dict[str, Any],
    *,
    now: datetime | None = None,
) -> bool:
    """A state change only agent runtimes hear, over webhooks, where Slack gets one alert
    for many agents (a used-up budget stops them all; its alert says so). Written only when
    an endpoint of the account receives it; the message has nothing for Slack, so it is
    born delivered and its deliveries carry it. Returns whether it was written."""
    now = now or utcnow()
    deliveries = _deliveries_of(session, account_id, (event,), now, emails=False)
    if not deliveries:
        return False
    message_id = session.execute(
        insert(_outbox)
        .values(
            account_id=account_id,
            kind=str(event),
            payload=payload,
            attempts=0,
            created_at=now,
            available_at=now,
            delivered_at=now,
            request_id=current_request_id(),
        )  # fmt: skip
        .returning(_outbox.c.id)
    ).scalar_one()
    session.execute(insert(_deliveries), [{**d, "message_id": message_id} for d in deliveries])
    return True


def _deliveries_of(
    session: Session,
    account_id: int | None,
    events: tuple[str, ...],
    now: datetime,
    *,
    emails: bool = True,
) -> list[dict[str, Any]]:
    """A delivery per endpoint and event type it receives, and one per email address (an
    email carries the alert itself, not the runtimes' events)."""
    rows: list[dict[str, Any]] = []
    fresh = {"attempts": 0, "created_at": now, "available_at": now}
    for endpoint_id, wanted in session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
            WebhookEndpoint.account_id == account_id
        )
    ):
        for event in events:
            if receives(wanted, event):
                rows.append({"endpoint_id": endpoint_id, "email_id": None, "event_type": event,
                             **fresh})  # fmt: skip
    if not emails:
        return rows
    for email_id in session.execute(
        select(AlertEmail.id).where(AlertEmail.account_id == account_id)
    ).scalars():
        rows.append({"endpoint_id": None, "email_id": email_id, "event_type": events[0], **fresh})
    return rows


def take_due(
    session: Session,
    *,
    kind_prefix: str = "",
    now: datetime | None = None,
    limit: int = 50,
) -> list[OutboxMessage]:
    """Undelivered messages whose time has come, oldest first, locked for this deliverer
    (on PostgreSQL other deliverers skip them rather than send them twice)."""
    now = now or utcnow()
    stmt = (
        select(OutboxMessage)
        .where(OutboxMessage.delivered_at.is_(None), OutboxMessage.available_at <= now)
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if kind_prefix:
        stmt = stmt.where(OutboxMessage.kind.startswith(kind_prefix))
    return list(session.execute(stmt).scalars())


def claim_due(
    session: Session,
    *,
    kind_prefix: str,
    lease: timedelta,
    now: datetime | None = None,
    limit: int = 50,
) -> list[OutboxMessage]:
    """Due messages, leased to this deliverer: they are not offered again for `lease`, so
    the caller can act on them outside any transaction (no lock held while Slack or Stripe
    is slow) and another deliverer does not act on them too. Each is marked delivered or
    failed once acted on; one whose deliverer died comes back when the lease runs out."""
    now = now or utcnow()
    messages = take_due(session, kind_prefix=kind_prefix, now=now, limit=limit)
    defer(session, [m.id for m in messages], now + lease)
    return messages


def defer(session: Session, message_ids: Iterable[int], until: datetime) -> None:
    """Offer these undelivered messages again at `until` (not counted as an attempt)."""
    ids = list(message_ids)
    if ids:
        session.execute(
            update(_outbox)
            .where(_outbox.c.id.in_(ids), _outbox.c.delivered_at.is_(None))
            .values(available_at=until)
        )


def mark_delivered(session: Session, message_id: int, *, now: datetime | None = None) -> None:
    session.execute(
        update(_outbox)
        .where(_outbox.c.id == message_id)
        .values(delivered_at=now or utcnow(), attempts=_outbox.c.attempts + 1, last_error=None)
    )


def backoff(attempts: int) -> timedelta:
    """Wait before the next try: 5 s doubling per failed attempt, at most 10 minutes."""
    return timedelta(seconds=min(600, 5 * 2 ** max(0, attempts - 1)))


def mark_failed(
    session: Session,
    message_id: int,
    error: str,
    *,
    now: datetime | None = None,
    retry_after: timedelta | None = None,
) -> None:
    """Record a failed attempt; the message is offered again after a backoff."""
    now = now or utcnow()
    attempts = session.execute(
        select(_outbox.c.attempts).where(_outbox.c.id == message_id)
    ).scalar_one()
    wait = retry_after if retry_after is not None else backoff(attempts + 1)
    session.execute(
        update(_outbox)
        .where(_outbox.c.id == message_id)
        .values(attempts=attempts + 1, last_error=error[:2000], available_at=now + wait)
    )


def pending(session: Session, *, account_id: int | None = None) -> list[OutboxMessage]:
    """Every undelivered message, oldest first (for tests and `creditbot` inspection)."""
    stmt = select(OutboxMessage).where(OutboxMessage.delivered_at.is_(None))
    if account_id is not None:
        stmt = stmt.where(OutboxMessage.account_id == account_id)
    return list(session.execute(stmt.order_by(OutboxMessage.id)).scalars())
