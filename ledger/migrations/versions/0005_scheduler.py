"""scheduler leadership and job runs

Revision ID: 0005
Revises: 0004
The scheduler part fills this in with its tables (ledger/models/scheduler.py).
"""

from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
