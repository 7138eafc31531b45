"""Deliveries of alerts beyond Slack: the rows `outbox.add` writes for each webhook
endpoint and email address of the account, as their deliverers take and settle them.

A deliverer claims due rows with a lease (no database lock is held while a receiver or an
SMTP server answers, and another replica does not send them too), sends each, and marks it
delivered or failed; a failed one comes back after the outbox's backoff. A destination's
later rows wait behind its failed one, so it receives its alerts in order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from ledger.cycles import utcnow
from ledger.models import Account, OutboxMessage
from ledger.models.destinations import AlertEmail, OutboxDelivery, WebhookEndpoint
from ledger.outbox import backoff

Channel = Literal["webhook", "email"]
CHANNELS: tuple[Channel, ...] = ("webhook", "email")
_deliveries = OutboxDelivery.__table__


@dataclass(frozen=True)
class Due:
    """One claimed delivery: the message, as what, to where."""

    id: int
    message_id: int
    event_type: str
    kind: str
    payload: dict[str, Any]
    created_at: datetime
    request_id: str | None
    attempts: int
    account_id: int
    account_name: str
    currency: str
    timezone: str
    next_renewal_at: datetime | None
    #: The endpoint (id, URL and secret) or the email address (id and address).
    destination_id: int
    url: str | None = None
    secret: str | None = None
    address: str | None = None


def _of_channel(channel: Channel) -> ColumnElement[bool]:
    if channel == "webhook":
        return OutboxDelivery.endpoint_id.is_not(None)
    return OutboxDelivery.email_id.is_not(None)


def _not_behind_a_wait(channel: Channel, now: datetime) -> ColumnElement[bool]:
    """No earlier row of the same destination waits for its retry (order per destination)."""
    earlier = aliased(OutboxDelivery)
    column = "endpoint_id" if channel == "webhook" else "email_id"
    return ~exists().where(
        getattr(earlier, column) == getattr(OutboxDelivery, column),
        earlier.id < OutboxDelivery.id,
        earlier.delivered_at.is_(None),
        earlier.available_at > now,
    )


def claim_due(
    session: Session,
    channel: Channel,
    *,
    now: datetime | None = None,
    lease: timedelta = timedelta(minutes=2),
    limit: int = 100,
) -> list[Due]:
    """Due deliveries of `channel`, oldest first, leased to this deliverer for `lease`."""
    now = now or utcnow()
    rows = session.execute(
        select(OutboxDelivery, OutboxMessage, Account, WebhookEndpoint, AlertEmail)
        .join(OutboxMessage, OutboxMessage.id == OutboxDelivery.message_id)
        .join(Account, Account.id == OutboxMessage.account_id)
        .outerjoin(WebhookEndpoint, WebhookEndpoint.id == OutboxDelivery.endpoint_id)
        .outerjoin(AlertEmail, AlertEmail.id == OutboxDelivery.email_id)
        .where(
            OutboxDelivery.delivered_at.is_(None),
            OutboxDelivery.available_at <= now,
            _of_channel(channel),
            _not_behind_a_wait(channel, now),
        )
        .order_by(OutboxDelivery.id)
        .limit(limit)
        .with_for_update(of=OutboxDelivery, skip_locked=True)
    ).all()
    due = []
    for delivery, message, account, endpoint, email in rows:
        due.append(
            Due(
                id=delivery.id,
                message_id=message.id,
                event_type=delivery.event_type,
                kind=message.kind,
                payload=dict(message.payload or {}),
                created_at=message.created_at,
                request_id=message.request_id,
                attempts=delivery.attempts,
                account_id=account.id,
                account_name=account.name,
                currency=account.currency,
                timezone=account.timezone,
                next_renewal_at=account.next_renewal_at,
                destination_id=endpoint.id if endpoint else email.id,
                url=endpoint.url if endpoint else None,
                secret=endpoint.secret if endpoint else None,
                address=email.address if email else None,
            )
        )
    defer(session, [d.id for d in due], now + lease)
    return due


def defer(session: Session, ids: Iterable[int], until: datetime) -> None:
    """Offer these undelivered rows again at `until` (not counted as an attempt)."""
    chosen = list(ids)
    if chosen:
        session.execute(
            update(_deliveries)
            .where(_deliveries.c.id.in_(chosen), _deliveries.c.delivered_at.is_(None))
            .values(available_at=until)
        )


def mark_delivered(session: Session, delivery_id: int, *, now: datetime | None = None) -> None:
    session.execute(
        update(_deliveries)
        .where(_deliveries.c.id == delivery_id)
        .values(delivered_at=now or utcnow(), attempts=_deliveries.c.attempts + 1, last_error=None)
    )


def mark_failed(
    session: Session,
    delivery: Due,
    error: str,
    held: Iterable[int] = (),
    *,
    now: datetime | None = None,
) -> datetime:
    """Record a failed attempt; it and the `held` rows behind it (the same destination's
    later ones) come back after the backoff, which is returned."""
    now = now or utcnow()
    again = now + backoff(delivery.attempts + 1)
    session.execute(
        update(_deliveries)
        .where(_deliveries.c.id == delivery.id)
        .values(attempts=delivery.attempts + 1, last_error=error[:2000], available_at=again)
    )
    defer(session, held, again)
    return again


@dataclass(frozen=True)
class Backlog:
    """Deliveries of one channel not yet made, those whose last try failed, and the age of
    the oldest (seconds)."""

    channel: Channel
    undelivered: int
    failed: int
    oldest_age: float | None


def backlog(session: Session, *, now: datetime | None = None) -> list[Backlog]:
    """Each channel's backlog (for /metrics and `creditbot webhooks list`)."""
    now = now or utcnow()
    found = []
    for channel in CHANNELS:
        count, failed, oldest = session.execute(
            select(
                func.count(),
                func.count(OutboxDelivery.last_error),
                func.min(OutboxDelivery.created_at),
            ).where(OutboxDelivery.delivered_at.is_(None), _of_channel(channel))
        ).one()
        if oldest is not None and oldest.tzinfo is None:  # SQLite: an aggregate loses the type
            oldest = datetime.fromisoformat(str(oldest)).replace(tzinfo=now.tzinfo)
        age = (now - oldest).total_seconds() if oldest is not None else None
        found.append(Backlog(channel, int(count), int(failed), age))
    return found


@dataclass(frozen=True)
class DestinationState:
    """How one endpoint's or address's deliveries stand."""

    delivered: int
    undelivered: int
    last_error: str | None


def destination_states(
    session: Session, channel: Channel, ids: Iterable[int]
) -> dict[int, DestinationState]:
    column = OutboxDelivery.endpoint_id if channel == "webhook" else OutboxDelivery.email_id
    chosen = list(ids)
    if not chosen:
        return {}
    states: dict[int, DestinationState] = {}
    for dest, delivered, undelivered in session.execute(
        select(
            column,
            func.count(OutboxDelivery.delivered_at),
            func.count() - func.count(OutboxDelivery.delivered_at),
        )
        .where(column.in_(chosen))
        .group_by(column)
    ):
        states[dest] = DestinationState(int(delivered), int(undelivered), None)
    for dest, error in session.execute(
        select(column, OutboxDelivery.last_error)
        .where(
            column.in_(chosen),
            OutboxDelivery.delivered_at.is_(None),
            OutboxDelivery.last_error.is_not(None),
        )
        .order_by(OutboxDelivery.id.desc())
    ):
        state = states.get(dest)
        if state is not None and state.last_error is None:
            states[dest] = DestinationState(state.delivered, state.undelivered, error)
    return states
