"""request ids, webhook endpoints, alert emails and outbox deliveries

Revision ID: 0012
Revises: 0011
The request id on journal entries and outbox messages (ledger/tracing.py), and the tables of
ledger/models/destinations.py: webhook endpoints, alert email addresses, and one delivery
row per outbox message and destination.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ledger.models.base

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_emails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("created_at", ledger.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_alert_emails_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_emails")),
        sa.UniqueConstraint("account_id", "address", name="uq_alert_emails_address"),
    )
    with op.batch_alter_table("alert_emails", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_emails_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("created_at", ledger.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_webhook_endpoints_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_endpoints_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "outbox_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("endpoint_id", sa.Integer(), nullable=True),
        sa.Column("email_id", sa.Integer(), nullable=True),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", ledger.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("available_at", ledger.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", ledger.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(endpoint_id IS NULL) <> (email_id IS NULL)",
            name=op.f("ck_outbox_deliveries_one_destination"),
        ),
        sa.ForeignKeyConstraint(
            ["email_id"],
            ["alert_emails.id"],
            name=op.f("fk_outbox_deliveries_email_id_alert_emails"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_outbox_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["outbox.id"], name=op.f("fk_outbox_deliveries_message_id_outbox")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_deliveries")),
        sa.UniqueConstraint("message_id", "email_id", name="uq_deliveries_email"),
        sa.UniqueConstraint(
            "message_id", "endpoint_id", "event_type", name="uq_deliveries_endpoint"
        ),
    )
    with op.batch_alter_table("outbox_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_deliveries_email", ["email_id"], unique=False)
        batch_op.create_index("ix_outbox_deliveries_endpoint", ["endpoint_id"], unique=False)
        batch_op.create_index(
            "ix_outbox_deliveries_pending", ["delivered_at", "available_at"], unique=False
        )

    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(length=128), nullable=True))

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(length=128), nullable=True))


def _drop_request_id(table: str) -> None:
    # SQLite drops a plain column in place (3.35+): a batch copy of `entries` would have to
    # drop a table other tables point at, which SQLite refuses with foreign keys on.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE {table} DROP COLUMN request_id")
    else:
        op.drop_column(table, "request_id")


def downgrade() -> None:
    with op.batch_alter_table("outbox_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_deliveries_pending")
        batch_op.drop_index("ix_outbox_deliveries_endpoint")
        batch_op.drop_index("ix_outbox_deliveries_email")

    op.drop_table("outbox_deliveries")
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_endpoints_account_id"))

    op.drop_table("webhook_endpoints")
    with op.batch_alter_table("alert_emails", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_emails_account_id"))

    op.drop_table("alert_emails")
    _drop_request_id("outbox")
    _drop_request_id("entries")
