"""Where alerts go besides Slack: each account's webhook endpoints and alert email
addresses, and one delivery row per outbox message and destination, so every endpoint and
every address gets each alert once, with its own retries, whatever Slack or the others do.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ledger.models.base import Base, BigId, UTCDateTime


class WebhookEndpoint(Base):
    """A URL of the account's that receives its alerts as signed Standard Webhooks."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    #: The signing secret (`whsec_` and base64, Standard Webhooks), shown once when made and
    #: kept encrypted with CREDITBOT_ENCRYPTION_KEYS (ledger/secrets_at_rest.py).
    secret: Mapped[str] = mapped_column(Text)
    #: Event types it receives (`alert.plan_low`, `agent.stopped`, ...); empty: all of them.
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AlertEmail(Base):
    """An address that receives the account's alerts by email."""

    __tablename__ = "alert_emails"
    __table_args__ = (UniqueConstraint("account_id", "address", name="uq_alert_emails_address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    address: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxDelivery(Base):
    """One outbox message on its way to one webhook endpoint (as one event type) or one
    email address, written in the transaction that wrote the message."""

    __tablename__ = "outbox_deliveries"
    __table_args__ = (
        CheckConstraint("(endpoint_id IS NULL) <> (email_id IS NULL)", name="one_destination"),
        UniqueConstraint("message_id", "endpoint_id", "event_type", name="uq_deliveries_endpoint"),
        UniqueConstraint("message_id", "email_id", name="uq_deliveries_email"),
        Index("ix_outbox_deliveries_pending", "delivered_at", "available_at"),
        Index("ix_outbox_deliveries_endpoint", "endpoint_id"),
        Index("ix_outbox_deliveries_email", "email_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                            ForeignKey("outbox.id"))  # fmt: skip
    endpoint_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    email_id: Mapped[int | None] = mapped_column(ForeignKey("alert_emails.id", ondelete="CASCADE"))
    #: What the destination receives the message as (its kind, or `agent.stopped`...).
    event_type: Mapped[str] = mapped_column(String(40))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
