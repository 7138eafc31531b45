"""API key revocation count; indexes on a call's entries and a charge's refunds

Revision ID: 0013
Revises: 0012
`api_key_revocations` (ledger/models/api.py) lets servers cache API keys and still honour a
revocation at once. The partial indexes keep ending a call and refunding a charge as fast
on a journal of millions of entries as on an empty one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_key_revocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_api_key_revocations_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key_revocations")),
    )
    op.execute(
        "INSERT INTO api_key_revocations (id, count) "
        "SELECT 1, COUNT(*) FROM api_keys WHERE revoked_at IS NOT NULL"
    )
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_entries_call",
            ["call_id"],
            unique=False,
            sqlite_where=sa.text("call_id IS NOT NULL"),
            postgresql_where=sa.text("call_id IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_entries_refund_of",
            ["refund_of"],
            unique=False,
            sqlite_where=sa.text("refund_of IS NOT NULL"),
            postgresql_where=sa.text("refund_of IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index("ix_entries_refund_of")
        batch_op.drop_index("ix_entries_call")
    op.drop_table("api_key_revocations")
