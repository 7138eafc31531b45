"""spend controls: account budget, recharge to a target, alert levels, audit, key scopes

Revision ID: 0011
Revises: 0010
- accounts: the monthly budget and the month's spend of all agents together (filled from
  the agents' own month spend, so a budget set mid-month counts what was already spent),
  the auto-recharge mode and target, alert levels per kind (from today's single
  thresholds) and the "low alert fired" flags that make "recovered" alerts;
- agents and entries: the stop reason `account_budget`;
- api_keys: a scope, `runtime` for every existing key;
- topups: the admin API's Idempotency-Key and the Checkout page it answered;
- audit_events: the append-only audit trail (triggers refuse UPDATE and DELETE).

On SQLite, batch mode rebuilds accounts, agents and entries, which other rows refer to:
`ledger.migrate` runs migrations with foreign keys off and checks them before committing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ledger.models.base

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_OLD_REASONS = "('plan_exhausted', 'wallet_empty', 'monthly_limit')"
_NEW_REASONS = "('plan_exhausted', 'wallet_empty', 'monthly_limit', 'account_budget')"


def _reasons(sql: str) -> dict[str, str]:
    return {
        "agents": "(status = 'active' AND stop_reason IS NULL) OR "
        f"(status = 'stopped' AND stop_reason IN {sql})",
        "entries": f"refused_reason IS NULL OR refused_reason IN {sql}",
    }


_REASON_CHECKS = {"agents": "stop_reason", "entries": "refused"}

_APPEND_ONLY_SQLITE = (
    "CREATE TRIGGER audit_events_no_{what} BEFORE {WHAT} ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
)
_APPEND_ONLY_PG_FUNCTION = """
CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END
$$ LANGUAGE plpgsql
"""
_APPEND_ONLY_PG_TRIGGER = (
    "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
)


def _check_reasons(sql: str) -> None:
    for table, check in _REASON_CHECKS.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"ck_{table}_{check}"), type_="check")
            batch.create_check_constraint(check, _reasons(sql)[table])


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        for name, default in (
            ("plan_alert_levels", "'20'"),
            ("wallet_alert_levels", "'1000000'"),
            ("limit_alert_levels", "'80,100'"),
            ("budget_alert_levels", "'80,100'"),
        ):
            size = 200 if name == "wallet_alert_levels" else 100
            batch.add_column(
                sa.Column(name, sa.String(size), nullable=False, server_default=sa.text(default))
            )
        for name in ("plan_low_alerted", "wallet_low_alerted"):
            batch.add_column(
                sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())
            )
        batch.add_column(
            sa.Column(
                "auto_recharge_mode", sa.String(8), nullable=False, server_default=sa.text("'add'")
            )
        )
        batch.add_column(
            sa.Column(
                "auto_recharge_target_minor",
                sa.BigInteger(),
                nullable=False,
                server_default=sa.text("0"),
            )
        )
        batch.add_column(sa.Column("monthly_budget", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("account_month", sa.String(7), nullable=False, server_default=sa.text("''"))
        )
        batch.add_column(
            sa.Column(
                "account_month_spend", sa.BigInteger(), nullable=False, server_default=sa.text("0")
            )
        )
        batch.create_check_constraint(
            "monthly_budget", "monthly_budget IS NULL OR monthly_budget > 0"
        )
        batch.create_check_constraint("account_month_spend", "account_month_spend >= 0")
        batch.create_check_constraint(
            "auto_recharge_mode", "auto_recharge_mode IN ('add', 'target')"
        )
        batch.create_check_constraint("auto_recharge_target", "auto_recharge_target_minor >= 0")

    # Today's single thresholds become the first levels; 0 meant "no alert".
    op.execute(
        "UPDATE accounts SET "
        "plan_alert_levels = CASE WHEN plan_low_percent > 0 "
        "THEN CAST(plan_low_percent AS VARCHAR(100)) ELSE '' END, "
        "wallet_alert_levels = CASE WHEN wallet_low_credits > 0 "
        "THEN CAST(wallet_low_credits AS VARCHAR(200)) ELSE '' END"
    )
    # The month's spend of the account: what its agents spent in their latest month.
    op.execute(
        "UPDATE accounts SET "
        "account_month = COALESCE((SELECT MAX(month) FROM agents "
        "WHERE agents.account_id = accounts.id), ''), "
        "account_month_spend = COALESCE((SELECT SUM(a.month_spend) FROM agents a "
        "WHERE a.account_id = accounts.id AND a.month = (SELECT MAX(b.month) FROM agents b "
        "WHERE b.account_id = accounts.id)), 0)"
    )
    _check_reasons(_NEW_REASONS)

    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("scope", sa.String(16), nullable=False, server_default=sa.text("'runtime'"))
        )
        batch.create_check_constraint("scope", "scope IN ('runtime', 'admin')")

    with op.batch_alter_table("topups") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(128), nullable=True))
        batch.add_column(sa.Column("checkout_url", sa.Text(), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_topups_account_key"), ["account_id", "idempotency_key"]
        )

    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("at", ledger.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=True),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "actor_kind IN ('slack_user', 'cli_operator', 'api_key', 'web_user', 'system')",
            name=op.f("ck_audit_events_actor_kind"),
        ),
        sa.CheckConstraint(
            "source IN ('slack', 'cli', 'api', 'web', 'system')",
            name=op.f("ck_audit_events_source"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_audit_events_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_account", "audit_events", ["account_id", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_APPEND_ONLY_PG_FUNCTION)
        op.execute(_APPEND_ONLY_PG_TRIGGER)
    else:
        for what in ("update", "delete"):
            op.execute(_APPEND_ONLY_SQLITE.format(what=what, WHAT=what.upper()))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION audit_events_append_only()")
    op.drop_index("ix_audit_events_account", table_name="audit_events")
    op.drop_table("audit_events")
    with op.batch_alter_table("topups") as batch:
        batch.drop_constraint(op.f("uq_topups_account_key"), type_="unique")
        batch.drop_column("checkout_url")
        batch.drop_column("idempotency_key")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint(op.f("ck_api_keys_scope"), type_="check")
        batch.drop_column("scope")
    # Agents stopped for the budget wait for plan credits instead in the older version.
    op.execute(
        "UPDATE agents SET stop_reason = 'plan_exhausted' WHERE stop_reason = 'account_budget'"
    )
    op.execute(
        "UPDATE entries SET refused_reason = 'plan_exhausted' "
        "WHERE refused_reason = 'account_budget'"
    )
    _check_reasons(_OLD_REASONS)
    with op.batch_alter_table("accounts") as batch:
        for check in (
            "monthly_budget",
            "account_month_spend",
            "auto_recharge_mode",
            "auto_recharge_target",
        ):
            batch.drop_constraint(op.f(f"ck_accounts_{check}"), type_="check")
        for name in (
            "account_month_spend",
            "account_month",
            "monthly_budget",
            "auto_recharge_target_minor",
            "auto_recharge_mode",
            "wallet_low_alerted",
            "plan_low_alerted",
            "budget_alert_levels",
            "limit_alert_levels",
            "wallet_alert_levels",
            "plan_alert_levels",
        ):
            batch.drop_column(name)
