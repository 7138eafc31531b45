"""Flat cost as the journal grows: 10 million transfers against an empty journal.

`fill` (bench/journal_fill.py) writes a year of history for 100 accounts in bulk.
`measure` times, on account 1 of a filled database and of an empty one made the same way,
the operations that must not grow with the journal: a charge (the writer, one caller),
`/v1/balance`, `/balance` in Slack (the dashboard's data load), the 7-day forecast and the
usage chart's 90-day query; then `creditbot ledger verify` and `ledger export` with their
peak memory. The dashboard and the chart answer with a row per agent and day of their window,
which an empty journal lacks: they are judged against a journal of only the last 90 days of
the same history (the year before the window must cost nothing), the empty one shown beside.

    python bench/journal_size.py [--transfers 10000000] [--only sqlite|postgres]
    python bench/journal_size.py fill --url sqlite:///big.db [--transfers N] [--days 365]
    python bench/journal_size.py measure --url sqlite:///big.db --empty-url sqlite:///e.db
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select  # noqa: E402

from bench.journal_fill import DAYS, fill  # noqa: E402
from bench.ledger_charge import message_request  # noqa: E402
from ledger.accounts import balance  # noqa: E402
from ledger.cycles import local_date, utcnow  # noqa: E402
from ledger.db import make_engine, transaction  # noqa: E402
from ledger.forecast import forecast  # noqa: E402
from ledger.journal.writer import JournalWriter  # noqa: E402
from ledger.models import Account, Agent  # noqa: E402
from ledger.usage import usage  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.2
MEMORY_MB = 200
#: The usage chart's longest range.
CHART_DAYS = 90


def p50_ms(sides: list[Callable[[], object]], runs: int) -> list[float]:
    """The median time of each function, run in turn (so noise hits all alike)."""
    samples: list[list[float]] = [[] for _ in sides]
    for _ in range(runs):
        for fn, times in zip(sides, samples, strict=True):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return [statistics.median(times) * 1000 for times in samples]


def operations(url: str) -> dict[str, Callable[[], object]]:
    """What must cost the same on a big journal as on an empty one, on account 1."""
    from bot.config import Settings
    from bot.context import AppContext
    from bot.slack.dashboard_data import load_dashboard

    engine = make_engine(url)
    context = AppContext(settings=Settings(database_url=url, run_scheduler=False), engine=engine)
    sessions = context.sessions
    account_id = 1
    agent_id = transaction(
        sessions,
        lambda s: (
            s.execute(select(Agent.id).where(Agent.account_id == account_id)).scalars().first()
        ),
    )
    writer = JournalWriter(engine)
    loop = asyncio.new_event_loop()
    keys = iter(range(10**9))

    def chart_query(s) -> object:  # noqa: ANN001
        # By agent and day, as the chart draws it, over the chart's longest range.
        account = s.get(Account, account_id)
        today = local_date(utcnow(), account.timezone)
        start = today - timedelta(days=CHART_DAYS - 1)
        return usage(s, account_id, start, today, ("agent", "day"))

    def charge_one() -> object:
        request = message_request(account_id, agent_id, f"measure-{time.time_ns()}-{next(keys)}")
        return loop.run_until_complete(writer.run(request))

    return {
        "charge (writer)": charge_one,
        "/v1/balance": lambda: transaction(sessions, lambda s: balance(s, account_id)),
        "/balance in Slack": lambda: load_dashboard(context, account_id),
        "7-day forecast": lambda: transaction(sessions, lambda s: forecast(s, account_id)),
        f"{CHART_DAYS}-day usage chart": lambda: transaction(sessions, chart_query),
    }


#: What reads a window of usage answers with rows in proportion to the window's usage, which
#: an empty journal does not have: also compared with a journal of only that window's
#: history, at the same pace (flat cost = the year before the window costs nothing).
WINDOWED = ("/balance in Slack", f"{CHART_DAYS}-day usage chart")


def measure(url: str, empty_url: str, window_url: str | None = None, runs: int = 200) -> bool:
    ok = True
    bases = {"empty": operations(empty_url)}
    if window_url:
        bases[f"{CHART_DAYS} days only"] = operations(window_url)
    big = operations(url)
    for name in big:
        others = [base[name] for base in bases.values()]
        for fn in (big[name], *others):  # warm caches
            for _ in range(5):
                fn()
        slow, *fast = p50_ms(
            [big[name], *others],
            runs if name in ("charge (writer)", "/v1/balance") else max(5, runs // 10),
        )
        line = f"{name:<20} p50 {slow:7.2f} ms on the big journal"
        for base, base_ms in zip(bases, fast, strict=True):
            ratio = slow / base_ms
            judged = base == "empty" if name not in WINDOWED or not window_url else base != "empty"
            verdict = ("met" if ratio <= TARGET else "NOT met") if judged else "for reference"
            ok &= ratio <= TARGET or not judged
            line += f"; {base}: {base_ms:6.2f} ms, {ratio:5.2f}x ({verdict})"
        print(line, flush=True)
    for args in (["ledger", "verify"], ["ledger", "export", "--account", "1", "--output"]):
        ok &= _cli(url, args)
    return ok


def _cli(url: str, args: list[str]) -> bool:
    """Run a `creditbot` command; its time and peak memory (the high-water mark of its own
    memory since it started, polled from /proc)."""
    with tempfile.TemporaryDirectory() as tmp:
        if args[-1] == "--output":
            args = [*args, str(Path(tmp) / "statement.csv")]
        env = {**os.environ, "DATABASE_URL": url, "RUN_SCHEDULER": "false"}
        cli = str(Path(sys.executable).with_name("creditbot"))
        t0 = time.perf_counter()
        process = subprocess.Popen([cli, *args], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        peak = 0
        while process.poll() is None:
            peak = max(peak, _high_water_kb(process.pid))
            time.sleep(0.02)
        seconds = time.perf_counter() - t0
    peak_mb = peak / 1024
    met = process.returncode == 0 and peak_mb < MEMORY_MB
    print(
        f"creditbot {' '.join(args[:2])}: {seconds:.1f} s, peak memory {peak_mb:.0f} MB"
        f" (< {MEMORY_MB} MB: {'met' if met else 'NOT met'}), exit {process.returncode}",
        flush=True,
    )
    return met


def _high_water_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def run_backend(name: str, urls: Iterator[str], transfers: int) -> bool:
    big, empty, window = next(urls), next(urls), next(urls)
    now = utcnow()
    fill(big, transfers, now)
    fill(empty, 0, now)
    fill(window, transfers * CHART_DAYS // DAYS, now, days=CHART_DAYS)
    print(f"{name}: measuring (targets: <= {TARGET}x)", flush=True)
    return measure(big, empty, window)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=["fill", "measure"], default=None)
    parser.add_argument("--url", help="the database to fill or measure")
    parser.add_argument("--empty-url", help="measure: the empty database to compare with")
    parser.add_argument("--window-url", help=f"measure: one with only {CHART_DAYS} days of history")
    parser.add_argument("--transfers", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=DAYS, help="fill: days of history")
    parser.add_argument("--only", choices=["sqlite", "postgres"], default=None)
    parser.add_argument("--keep", help="directory for the SQLite files (kept afterwards)")
    args = parser.parse_args()
    if args.command == "fill":
        fill(args.url, args.transfers, days=args.days)
        return 0
    if args.command == "measure":
        return 0 if measure(args.url, args.empty_url, args.window_url) else 1
    ok = True
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory(prefix="creditbot-journal-") as tmp:
            where = Path(args.keep or tmp)
            where.mkdir(parents=True, exist_ok=True)
            urls = iter(f"sqlite:///{where}/{n}.db" for n in ("big", "empty", "window"))
            ok &= run_backend("sqlite", urls, args.transfers)
    if args.only in (None, "postgres"):
        from tests.support.pg import PostgresUnavailable, create_database, start_cluster

        try:
            cluster = start_cluster(durable=True)
        except PostgresUnavailable as exc:
            print(f"postgres skipped: {exc}")
            return 0 if ok else 1
        try:
            urls = iter(create_database(cluster, n) for n in ("big", "empty", "window"))
            ok &= run_backend("postgres", urls, args.transfers)
        finally:
            cluster.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
