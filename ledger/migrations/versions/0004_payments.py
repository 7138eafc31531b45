"""stripe payments and auto-recharge

Revision ID: 0004
Revises: 0003
The payments part fills this in with its tables (ledger/models/payments.py).
"""

from __future__ import annotations

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
