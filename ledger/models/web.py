"""The billing page's sign-in: single-use links handed out in Slack, the browser sessions
they open, and the server's own secret for signed links when none is configured.

Only SHA-256 hashes of link and session tokens are stored: a copy of the database signs
no one in.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ledger.models.base import Base, UTCDateTime


class SignInLink(Base):
    """A short-lived, single-use link to the billing page, bound to one Slack user and one
    account, with what that user may do there (billing admins may change settings)."""

    __tablename__ = "sign_in_links"
    __table_args__ = (Index("ix_sign_in_links_expires", "expires_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    slack_user_id: Mapped[str] = mapped_column(String(32))
    can_edit: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A browser signed in to one account's billing page (its cookie holds the token)."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_expires", "expires_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    slack_user_id: Mapped[str] = mapped_column(String(32))
    can_edit: Mapped[bool] = mapped_column(Boolean)
    #: Every form of the page carries it; a POST without it changes nothing.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ServerSecret(Base):
    """A secret the server made for itself (the key of signed links) when the environment
    gives none; shared by every replica through the database, and kept encrypted with
    CREDITBOT_ENCRYPTION_KEYS when they are set (ledger/secrets_at_rest.py)."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
