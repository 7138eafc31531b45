"""The alert outbox as an operator sees it: each alert pending, failed (with its last
error) or delivered; the backlog and its oldest alert; and failed alerts retried now
(`creditbot alerts list | retry`, `creditbot doctor`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from ledger.cycles import utcnow
from ledger.models import OutboxMessage
from ledger.outbox import ALERT_PREFIX

#: An alert not yet tried, one whose last try failed, and one Slack accepted.
PENDING, FAILED, DELIVERED = "pending", "failed", "delivered"
ALERT_STATES = (PENDING, FAILED, DELIVERED)

_is_alert = OutboxMessage.kind.startswith(ALERT_PREFIX)
_undelivered = OutboxMessage.delivered_at.is_(None)


def alert_state(message: OutboxMessage) -> str:
    if message.delivered_at is not None:
        return DELIVERED
    return FAILED if message.last_error else PENDING


def _state_filter(state: str) -> ColumnElement[bool]:
    if state == DELIVERED:
        return OutboxMessage.delivered_at.is_not(None)
    if state == FAILED:
        return and_(_undelivered, OutboxMessage.last_error.is_not(None))
    if state == PENDING:
        return and_(_undelivered, OutboxMessage.last_error.is_(None))
    raise ValueError(f"no alert state {state!r}: one of {', '.join(ALERT_STATES)}")


def list_alerts(
    session: Session,
    *,
    states: Iterable[str] = ALERT_STATES,
    account_id: int | None = None,
    kind: str | None = None,
    limit: int = 50,
) -> list[OutboxMessage]:
    """Alerts in any of `states`, newest first (of one account, of one kind)."""
    stmt = select(OutboxMessage).where(_is_alert).order_by(OutboxMessage.id.desc()).limit(limit)
    wanted = list(states)
    if set(wanted) != set(ALERT_STATES):
        stmt = stmt.where(or_(*(_state_filter(s) for s in wanted)))
    if account_id is not None:
        stmt = stmt.where(OutboxMessage.account_id == account_id)
    if kind:
        full = kind if kind.startswith(ALERT_PREFIX) else ALERT_PREFIX + kind
        stmt = stmt.where(OutboxMessage.kind == full)
    return list(session.execute(stmt).scalars())


@dataclass(frozen=True)
class Backlog:
    """Alerts waiting to be delivered, and the oldest of them."""

    undelivered: int
    failed: int
    oldest: OutboxMessage | None

    def oldest_age(self, now: datetime) -> float | None:
        """Seconds since the oldest undelivered alert was written."""
        return (now - self.oldest.created_at).total_seconds() if self.oldest else None


def backlog(session: Session) -> Backlog:
    counts = session.execute(
        select(
            func.count(),
            func.count(OutboxMessage.last_error),
        ).where(_is_alert, _undelivered)
    ).one()
    oldest = session.execute(
        select(OutboxMessage).where(_is_alert, _undelivered).order_by(OutboxMessage.id).limit(1)
    ).scalar_one_or_none()
    return Backlog(undelivered=int(counts[0]), failed=int(counts[1]), oldest=oldest)


def retry_alerts(
    session: Session,
    *,
    ids: Iterable[int] = (),
    account_id: int | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Make undelivered alerts due now (those of `ids`, or every one of the account or of
    all accounts), without waiting for their backoff. An account's alerts after a failed
    one are held back to keep their order, so they go again too. Returns their ids."""
    now = now or utcnow()
    chosen = list(ids)
    stmt = select(OutboxMessage.id).where(_is_alert, _undelivered)
    if chosen:
        stmt = stmt.where(OutboxMessage.id.in_(chosen))
    if account_id is not None:
        stmt = stmt.where(OutboxMessage.account_id == account_id)
    found = list(session.execute(stmt.order_by(OutboxMessage.id)).scalars())
    if found:
        session.execute(
            update(OutboxMessage.__table__)
            .where(OutboxMessage.__table__.c.id.in_(found))
            .values(available_at=now)
        )
    return found
