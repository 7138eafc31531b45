"""Usage questions over a big journal: a 90-day usage report and the 7-day forecast, read
from the usage rollup, next to the same SQL on the bare driver (the floor) and the same
question answered by scanning the journal (what the rollup replaces).

The data: `--transfers` transfers (default 10 million) of usage over a year, two per entry
(plan and wallet), across 10 accounts of 20 agents each, made in SQL straight into the
tables (no gate, so the rollup is built from them with one GROUP BY, as the migration's
backfill would). Everything runs in one process on the same database.

    python bench/usage_query.py [--transfers 10000000] [--only sqlite|postgres] [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from ledger.accounts import AccountSettings, create_account  # noqa: E402
from ledger.agents import add_agent  # noqa: E402
from ledger.db import make_engine, make_session_factory, transaction  # noqa: E402
from ledger.forecast import forecast  # noqa: E402
from ledger.migrate import upgrade  # noqa: E402
from ledger.usage import usage  # noqa: E402

ACCOUNTS, AGENTS = 10, 20
START = datetime(2025, 11, 11, tzinfo=UTC)
NOW = START + timedelta(days=365)
LAST = NOW.date()
FIRST = LAST - timedelta(days=89)


def setup_accounts(sessions) -> None:
    def work(s):
        for n in range(ACCOUNTS):
            acc = create_account(
                s,
                AccountSettings(name=f"bench-{n}", plan_credits=10**12, cycle_anchor_day=11),
                now=START,
            )
            for m in range(AGENTS):
                add_agent(s, acc.id, f"agent-{m}", behaviour="use_balance", now=START)

    transaction(sessions, work)


def generate(engine, transfers: int) -> float:
    """Entries and their transfers in SQL, then the rollup from them. Returns seconds."""
    entries = transfers // 2
    step = 365 * 86_400 / entries
    dialect = engine.dialect.name
    began = time.perf_counter()
    with engine.begin() as conn:
        base = conn.execute(text("SELECT coalesce(max(id), 0) FROM entries")).scalar_one()
        if dialect == "sqlite":
            series = (
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :last) "
            )
            at = "datetime(:start, '+' || CAST(i * :step AS INTEGER) || ' seconds')"
            source = "FROM n"
        else:
            series = ""
            at = "CAST(:start AS timestamptz) + make_interval(secs => floor(i * :step))"
            source = "FROM generate_series(0, :last) AS i"
        conn.execute(
            text(
                series
                + "INSERT INTO entries (id, account_id, agent_id, kind, unit, quantity, amount, created_at) "
                f"SELECT :base + i + 1, 1 + i % {ACCOUNTS}, "
                f"(i % {ACCOUNTS}) * {AGENTS} + 1 + (i / {ACCOUNTS}) % {AGENTS}, 'usage', "
                "CASE WHEN i % 3 = 0 THEN 'call_minute' ELSE 'message' END, 1, 1000, "
                + at
                + " "
                + source
            ),
            {
                "last": entries - 1,
                "base": base,
                "step": step,
                "start": START.strftime("%Y-%m-%d %H:%M:%S"),
            },
        )
        for book, amount in (("plan", 600), ("wallet", 400)):
            conn.execute(
                text(
                    "INSERT INTO transfers (entry_id, account_id, debit_book, credit_book, amount) "
                    f"SELECT id, account_id, '{book}', 'usage', {amount} FROM entries WHERE id > :base"
                ),
                {"base": base},
            )
        day = (
            "date(created_at)"
            if dialect == "sqlite"
            else "CAST(created_at AT TIME ZONE 'UTC' AS date)"
        )
        conn.execute(text("DELETE FROM usage_days"))
        conn.execute(
            text(
                "INSERT INTO usage_days (account_id, day, agent_id, unit, quantity, from_plan, from_wallet) "
                f"SELECT account_id, {day}, agent_id, unit, count(*), 600 * count(*), 400 * count(*) "
                f"FROM entries WHERE kind = 'usage' GROUP BY account_id, {day}, agent_id, unit"
            )
        )
    if dialect == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    return time.perf_counter() - began


def timed(work: Callable[[], object], runs: int) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(runs):
        began = time.perf_counter()
        result = work()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples), result


def measure(engine, runs: int) -> None:
    sessions = make_session_factory(engine)
    dialect = engine.dialect.name
    raw = engine.raw_connection()
    cur = raw.driver_connection.cursor()
    ph = "?" if dialect == "sqlite" else "%s"
    first = FIRST.isoformat() if dialect == "sqlite" else FIRST
    last = LAST.isoformat() if dialect == "sqlite" else LAST

    def floor() -> list:
        cur.execute(
            "SELECT agent_id, day, unit, sum(CASE WHEN unit = 'message' THEN quantity ELSE 0 END), "
            "sum(CASE WHEN unit = 'call_minute' THEN quantity ELSE 0 END), sum(from_plan), sum(from_wallet) "
            f"FROM usage_days WHERE account_id = {ph} AND day >= {ph} AND day <= {ph} "
            "GROUP BY agent_id, day, unit ORDER BY agent_id, day, unit",
            (1, first, last),
        )
        rows = cur.fetchall()
        raw.driver_connection.commit()
        return rows

    def report() -> list:
        return transaction(sessions, lambda s: usage(s, 1, FIRST, LAST))

    def run_forecast() -> object:
        return transaction(sessions, lambda s: forecast(s, 1, now=NOW))

    start_at = datetime.combine(FIRST, datetime.min.time(), UTC)
    end_at = datetime.combine(LAST + timedelta(days=1), datetime.min.time(), UTC)

    def journal_scan() -> list:
        with engine.connect() as conn:
            return conn.execute(
                text(
                    "SELECT e.agent_id, e.unit, sum(t.amount) FROM transfers t JOIN entries e ON e.id = t.entry_id "
                    "WHERE t.account_id = 1 AND t.credit_book = 'usage' AND e.created_at >= :a AND e.created_at < :b "
                    "GROUP BY e.agent_id, e.unit"
                ),
                {
                    "a": start_at.replace(tzinfo=None) if dialect == "sqlite" else start_at,
                    "b": end_at.replace(tzinfo=None) if dialect == "sqlite" else end_at,
                },
            ).all()

    for work in (floor, report, run_forecast):  # warm the caches
        work()
    floor_ms, rows = timed(floor, runs)
    report_ms, report_rows = timed(report, runs)
    forecast_ms, _ = timed(run_forecast, runs)
    scan_ms, _ = timed(journal_scan, max(1, runs // 10))
    assert len(rows) == len(report_rows), (len(rows), len(report_rows))
    total = sum(r.total for r in report_rows)
    print(f"  90-day report ({len(report_rows)} rows, {total // 1000:,} credits):")
    print(f"    usage() from the rollup      {report_ms:8.2f} ms (median of {runs})")
    print(
        f"    raw driver, same rollup SQL  {floor_ms:8.2f} ms   -> usage() / floor = {report_ms / floor_ms:.2f}x"
    )
    print(
        f"    scanning the journal instead {scan_ms:8.2f} ms   -> rollup is {scan_ms / report_ms:.0f}x faster"
    )
    print(f"  7-day forecast                 {forecast_ms:8.2f} ms (median of {runs})")
    raw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transfers", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    if args.only != "postgres":
        with tempfile.TemporaryDirectory() as folder:
            engine = make_engine(f"sqlite:///{folder}/bench.db")
            upgrade(engine)
            setup_accounts(make_session_factory(engine))
            made = generate(engine, args.transfers)
            print(f"SQLite: {args.transfers:,} transfers made in {made:.0f} s")
            measure(engine, args.runs)
            engine.dispose()
    if args.only != "sqlite":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.support.pg import create_database, start_cluster

        cluster = start_cluster()
        try:
            engine = make_engine(create_database(cluster, "bench_usage"))
            upgrade(engine)
            setup_accounts(make_session_factory(engine))
            made = generate(engine, args.transfers)
            print(f"PostgreSQL: {args.transfers:,} transfers made in {made:.0f} s")
            measure(engine, args.runs)
            engine.dispose()
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
