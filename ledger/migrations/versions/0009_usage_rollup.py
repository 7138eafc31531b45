"""usage rollup

Revision ID: 0009
Revises: 0008
The usage rollup of ledger/models/usage.py (usage by account, local day, agent and unit,
plan vs wallet), filled from the journal's existing usage and refund entries.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_days",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("from_plan", sa.BigInteger(), nullable=False),
        sa.Column("from_wallet", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_usage_days_quantity")),
        sa.CheckConstraint(
            "from_plan >= 0 AND from_wallet >= 0", name=op.f("ck_usage_days_amounts")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_usage_days_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_usage_days_agent_id_agents")
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "day", "agent_id", "unit", name=op.f("pk_usage_days")
        ),
    )
    # The backfill reads the journal the way `ledger verify` does, so the two agree.
    from ledger.usage_check import rebuild

    rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_table("usage_days")
