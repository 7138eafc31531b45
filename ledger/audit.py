"""The audit trail: who changed which setting of an account, from where, when, and the
settings before and after.

Every service that changes a setting takes the `Actor` who asked and calls `record` in the
same transaction as the change, so the trail and the settings cannot disagree: a change
that rolls back leaves no row, and a row is never written for a change that did not
happen (settings saved as they were record nothing). Rows are only ever inserted; the
database refuses to update or delete them (migration 0011).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ledger.cycles import utcnow
from ledger.models.audit import AuditEvent

_events = AuditEvent.__table__
#: Most rows one read returns.
MAX_LIMIT = 500


class Actor(NamedTuple):
    """Who changed something, and from where (models/audit.py ACTOR_KINDS and SOURCES)."""

    kind: str
    name: str
    source: str

    @classmethod
    def slack(cls, user_id: str) -> Actor:
        return cls("slack_user", user_id, "slack")

    @classmethod
    def cli(cls, os_user: str) -> Actor:
        return cls("cli_operator", os_user, "cli")

    @classmethod
    def api_key(cls, prefix: str) -> Actor:
        return cls("api_key", prefix, "api")

    @classmethod
    def web(cls, user_id: str) -> Actor:
        return cls("web_user", user_id, "web")

    def __str__(self) -> str:
        return f"{self.name} ({self.kind.replace('_', ' ')}, {self.source})"


#: Changes made by creditbot itself, or by code that named nobody (tests, migrations).
SYSTEM = Actor("system", "creditbot", "system")


def record(
    session: Session,
    account_id: int,
    actor: Actor | None,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
    *,
    subject: str | int | None = None,
    now: datetime | None = None,
    always: bool = False,
) -> bool:
    """Write one audit row with the settings that changed (both sides of each), in the
    caller's transaction. Nothing changed, nothing written (unless `always`: an event such
    as a key created has no "before"). Returns whether a row was written."""
    keys = [k for k in after if before.get(k) != after[k]]
    if not keys and not always:
        return False
    actor = actor or SYSTEM
    session.execute(
        insert(_events).values(
            account_id=account_id,
            at=now or utcnow(),
            actor_kind=actor.kind,
            actor=actor.name[:100],
            source=actor.source,
            action=action,
            subject=None if subject is None else str(subject),
            before={k: before.get(k) for k in keys},
            after={k: after[k] for k in keys},
        )
    )
    return True


@dataclass(frozen=True)
class AuditView:
    id: int
    at: datetime
    actor_kind: str
    actor: str
    source: str
    action: str
    subject: str | None
    before: dict[str, Any]
    after: dict[str, Any]


def list_events(
    session: Session, account_id: int, *, limit: int = 50, before_id: int | None = None
) -> list[AuditView]:
    """The account's changes, newest first; `before_id` pages back past that row."""
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.account_id == account_id)
        .order_by(AuditEvent.id.desc())
        .limit(max(1, min(limit, MAX_LIMIT)))
    )
    if before_id is not None:
        stmt = stmt.where(AuditEvent.id < before_id)
    return [
        AuditView(
            e.id,
            e.at,
            e.actor_kind,
            e.actor,
            e.source,
            e.action,
            e.subject,
            dict(e.before or {}),
            dict(e.after or {}),
        )  # fmt: skip
        for e in session.execute(stmt).scalars()
    ]
