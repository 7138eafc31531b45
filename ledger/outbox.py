"""The outbox: side effects written with the change that caused them, delivered later.

Writers call `add` inside the ledger transaction. A deliverer (Slack alerts, Stripe
recharges) takes due messages with `take_due`, and marks each delivered or failed; a
failed message comes back after a backoff, so nothing is lost while Slack or Stripe is down.
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

_outbox = OutboxMessage.__table__


class Alert(StrEnum):
    """Alerts posted to the account's alert channel (rule 10). The value is the outbox
    kind; the Slack app renders each one."""

    PLAN_LOW = "alert.plan_low"
    PLAN_EXHAUSTED = "alert.plan_exhausted"
    WALLET_LOW = "alert.wallet_low"
    LIMIT_80 = "alert.limit_80"
    LIMIT_100 = "alert.limit_100"
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


def add(
    session: Session,
    account_id: int | None,
    kind: str,
    payload: dict[str, Any],
    *,
    now: datetime | None = None,
    dedup_key: str | None = None,
) -> bool:
    """Write one message in the caller's transaction. A message whose `dedup_key` was
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
    }
    if dedup_key is None:
        session.execute(insert(_outbox).values(**values))
        return True
    dialect_insert = _UPSERTS[session.get_bind().dialect.name]
    statement = dialect_insert(_outbox).values(**values)
    statement = statement.on_conflict_do_nothing(index_elements=["dedup_key"])
    return session.execute(statement.returning(_outbox.c.id)).first() is not None


#: INSERT ... ON CONFLICT DO NOTHING, by database (creditbot runs on these two).
_UPSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


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
