"""The audit trail: every settings change of an account, who made it, from where, when,
and the settings before and after. Append-only: the database refuses to change or delete
a row (triggers, migration 0011), and the ledger only ever inserts (ledger/audit.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ledger.models.base import Base, BigId, UTCDateTime

#: Who changed something: a Slack user, an operator at the CLI (their OS user), an API key
#: (its prefix), a person on the web billing page, or creditbot itself.
ACTOR_KINDS = ("slack_user", "cli_operator", "api_key", "web_user", "system")
#: Where the change was made.
SOURCES = ("slack", "cli", "api", "web", "system")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class AuditEvent(Base):
    """One settings change. `before` and `after` hold only the settings it changed."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint(_in("actor_kind", ACTOR_KINDS), name="actor_kind"),
        CheckConstraint(_in("source", SOURCES), name="source"),
        Index("ix_audit_events_account", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_kind: Mapped[str] = mapped_column(String(16))
    #: The Slack user id, OS user name, API key prefix or web user.
    actor: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(8))
    #: What changed, e.g. 'budget', 'auto_recharge', 'agent', 'api_key.created'.
    action: Mapped[str] = mapped_column(String(40))
    #: What it changed within the account: an agent or API key id, or None.
    subject: Mapped[str | None] = mapped_column(String(100))
    before: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
