"""agent runtime API keys

Revision ID: 0002
Revises: 0001
The api part fills this in with its tables (ledger/models/api.py).
"""

from __future__ import annotations

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
