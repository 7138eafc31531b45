"""slack installations and app state

Revision ID: 0003
Revises: 0002
The slack part fills this in with its tables (ledger/models/slack.py).
"""

from __future__ import annotations

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
