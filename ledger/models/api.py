"""Tables for the api part of creditbot: per-account API keys for agent runtimes and for
the platforms that automate what billing admins do (the key's scope), and the count of
revocations that lets servers cache keys.

Models here are picked up by Alembic autogenerate through `ledger.models`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ledger.models.base import Base, UTCDateTime


class ApiKey(Base):
    """A secret an agent runtime sends as `Authorization: Bearer ...`.

    Only its SHA-256 hash is stored (the secret is shown once, when created) with a short
    prefix that lets a person tell keys apart in `creditbot api-keys list`.
    """

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("scope IN ('runtime', 'admin')", name="scope"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    #: The first characters of the secret, safe to show ("cb_3kF9x2Qa").
    prefix: Mapped[str] = mapped_column(String(16))
    #: Hex SHA-256 of the whole secret.
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: 'runtime' (charges, calls, balance, agents) or 'admin' (also the account's
    #: settings, top-ups and audit trail: ledger/api_keys.py SCOPES).
    scope: Mapped[str] = mapped_column(
        String(16), default="runtime", server_default=text("'runtime'")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiKeyRevocations(Base):
    """How many API keys have ever been revoked: one row, counted up by every revocation.

    A server keeps the account of each key it has seen in memory (ledger/api_keys.py
    `KeyCache`) and reads this count in every transaction that trusts that memory: when
    the count moved, it forgets every key. So a revocation in any process takes effect at
    once, and a request still costs no query for its key.
    """

    __tablename__ = "api_key_revocations"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
