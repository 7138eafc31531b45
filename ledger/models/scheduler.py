"""Tables of the scheduler: what each job did last (for `creditbot jobs`), a short history
of runs that did work or failed, and who leads (the lock itself is a PostgreSQL advisory
lock or a file lock; this row only says who holds it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ledger.models.base import Base, BigId, UTCDateTime

RUN_STATUSES = ("ok", "error")


class SchedulerJob(Base):
    """One row per job: its last run, its result or error, and when it runs next."""

    __tablename__ = "scheduler_jobs"
    __table_args__ = (
        CheckConstraint("last_status IS NULL OR last_status IN ('ok', 'error')", name="status"),
    )

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[str | None] = mapped_column(String(8))
    last_result: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    runs: Mapped[int] = mapped_column(BigInteger, default=0)
    failures: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Failed runs since the last good one: a job that keeps failing shows here.
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    #: The process (host:pid) that ran it.
    runner: Mapped[str | None] = mapped_column(String(200))


class JobRun(Base):
    """A run that did something or failed (idle runs only update `scheduler_jobs`)."""

    __tablename__ = "scheduler_job_runs"
    __table_args__ = (
        CheckConstraint("status IN ('ok', 'error')", name="status"),
        Index("ix_scheduler_job_runs_job", "job", "id"),
        Index("ix_scheduler_job_runs_started", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(8))
    result: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    runner: Mapped[str | None] = mapped_column(String(200))


class SchedulerLeader(Base):
    """Who holds the scheduler's leader lock, for people to see. Written by the leader when
    it takes the lock and as a heartbeat while it holds it."""

    __tablename__ = "scheduler_leaders"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
