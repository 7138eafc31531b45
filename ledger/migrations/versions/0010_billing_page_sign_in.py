"""billing page sign-in

Revision ID: 0010
Revises: 0009
Tables of ledger/models/web.py: single-use sign-in links, browser sessions of the billing
page, and the server's own secret for signed links.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ledger.models.base

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _signed_in(name: str, *extra: sa.Column) -> None:
    op.create_table(
        name,
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("slack_user_id", sa.String(length=32), nullable=False),
        sa.Column("can_edit", sa.Boolean(), nullable=False),
        *extra,
        sa.Column("created_at", ledger.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", ledger.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f(f"fk_{name}_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f(f"pk_{name}")),
    )
    op.create_index(f"ix_{name}_expires", name, ["expires_at"], unique=False)


def upgrade() -> None:
    _signed_in(
        "sign_in_links",
        sa.Column("used_at", ledger.models.base.UTCDateTime(timezone=True), nullable=True),
    )
    _signed_in("web_sessions", sa.Column("csrf_token", sa.String(length=64), nullable=False))
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", ledger.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_secrets")),
    )


def downgrade() -> None:
    op.drop_table("server_secrets")
    op.drop_table("web_sessions")
    op.drop_table("sign_in_links")
