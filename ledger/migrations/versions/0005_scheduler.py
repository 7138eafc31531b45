"""scheduler leadership and job runs

Revision ID: 0005
Revises: 0004
Tables of ledger/models/scheduler.py: each job's last run (`creditbot jobs`), a history of
runs that did work or failed, and who holds the scheduler's leader lock.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ledger.models.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduler_job_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("started_at", ledger.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", ledger.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("runner", sa.String(length=200), nullable=True),
        sa.CheckConstraint("status IN ('ok', 'error')", name=op.f("ck_scheduler_job_runs_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_job_runs")),
    )
    with op.batch_alter_table("scheduler_job_runs", schema=None) as batch_op:
        batch_op.create_index("ix_scheduler_job_runs_job", ["job", "id"], unique=False)
        batch_op.create_index("ix_scheduler_job_runs_started", ["started_at"], unique=False)

    op.create_table(
        "scheduler_jobs",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("last_started_at", ledger.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", ledger.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=8), nullable=True),
        sa.Column("last_result", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_success_at", ledger.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_run_at", ledger.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.BigInteger(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("runner", sa.String(length=200), nullable=True),
        sa.CheckConstraint(
            "last_status IS NULL OR last_status IN ('ok', 'error')",
            name=op.f("ck_scheduler_jobs_status"),
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_jobs")),
    )
    op.create_table(
        "scheduler_leaders",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("acquired_at", ledger.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", ledger.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_leaders")),
    )


def downgrade() -> None:
    op.drop_table("scheduler_leaders")
    op.drop_table("scheduler_jobs")
    with op.batch_alter_table("scheduler_job_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_scheduler_job_runs_started")
        batch_op.drop_index("ix_scheduler_job_runs_job")
    op.drop_table("scheduler_job_runs")
