"""slack installations and app state

Revision ID: 0003
Revises: 0002
Tables of the Slack app (ledger/models/slack.py): slack_sdk's installation and OAuth
state stores, and who opened the App Home tab.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.models.base import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _str(name: str, length: int, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.String(length), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "slack_installations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _str("client_id", 32, False),
        _str("app_id", 32, False),
        _str("enterprise_id", 32),
        _str("enterprise_name", 200),
        _str("enterprise_url", 200),
        _str("team_id", 32),
        _str("team_name", 200),
        _str("bot_token", 200),
        _str("bot_id", 32),
        _str("bot_user_id", 32),
        _str("bot_scopes", 1000),
        _str("bot_refresh_token", 200),
        sa.Column("bot_token_expires_at", sa.DateTime(), nullable=True),
        _str("user_id", 32, False),
        _str("user_token", 200),
        _str("user_scopes", 1000),
        _str("user_refresh_token", 200),
        sa.Column("user_token_expires_at", sa.DateTime(), nullable=True),
        _str("incoming_webhook_url", 200),
        _str("incoming_webhook_channel", 200),
        _str("incoming_webhook_channel_id", 200),
        _str("incoming_webhook_configuration_url", 200),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        _str("token_type", 32),
        sa.Column("installed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_installations")),
    )
    op.create_index(
        "slack_installations_idx",
        "slack_installations",
        ["client_id", "enterprise_id", "team_id", "user_id", "installed_at"],
    )
    op.create_table(
        "slack_bots",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _str("client_id", 32, False),
        _str("app_id", 32, False),
        _str("enterprise_id", 32),
        _str("enterprise_name", 200),
        _str("team_id", 32),
        _str("team_name", 200),
        _str("bot_token", 200),
        _str("bot_id", 32),
        _str("bot_user_id", 32),
        _str("bot_scopes", 1000),
        _str("bot_refresh_token", 200),
        sa.Column("bot_token_expires_at", sa.DateTime(), nullable=True),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("installed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_bots")),
    )
    op.create_index(
        "slack_bots_idx", "slack_bots", ["client_id", "enterprise_id", "team_id", "installed_at"]
    )
    op.create_table(
        "slack_oauth_states",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _str("state", 200, False),
        sa.Column("expire_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_oauth_states")),
    )
    op.create_table(
        "slack_home_views",
        _str("team_id", 32, False),
        _str("user_id", 32, False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        _str("fingerprint", 64, False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_slack_home_views_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("team_id", "user_id", name=op.f("pk_slack_home_views")),
    )
    op.create_index(
        op.f("ix_slack_home_views_account_id"), "slack_home_views", ["account_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_slack_home_views_account_id"), table_name="slack_home_views")
    op.drop_table("slack_home_views")
    op.drop_table("slack_oauth_states")
    op.drop_index("slack_bots_idx", table_name="slack_bots")
    op.drop_table("slack_bots")
    op.drop_index("slack_installations_idx", table_name="slack_installations")
    op.drop_table("slack_installations")
