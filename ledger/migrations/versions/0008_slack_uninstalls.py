"""slack workspaces that uninstalled the app

Revision ID: 0008
Revises: 0007
The table of ledger/models/slack.py `SlackUninstall`: workspaces creditbot stops posting to
after `app_uninstalled` or `tokens_revoked`, reported by `creditbot doctor`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ledger.models.base

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_uninstalls",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("at", ledger.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_slack_uninstalls")),
    )


def downgrade() -> None:
    op.drop_table("slack_uninstalls")
