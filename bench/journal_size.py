"""Flat cost as the journal grows: 10 million transfers against an empty journal.

`fill` writes a year of history for 100 accounts in bulk (COPY on PostgreSQL, executemany
in big transactions on SQLite, secondary indexes built after the load): message charges
from plan credits and from the wallet, and top-ups. The accounts, agents and keys
are made by the ledger itself; the history is written straight into the journal's tables,
with the cached balances, month spends and the usage rollup set to what it adds up to
(`ledger verify` passes). `measure` times, on the busiest account of a filled database and of an empty one
made the same way, the operations that must not grow with the journal: a charge (the
writer, one caller), `/v1/balance`, `/balance` in Slack (the dashboard's data load) and
the 7-day forecast; then `creditbot ledger verify` and `ledger export` with their peak
memory.

    python bench/journal_size.py [--transfers 10000000] [--only sqlite|postgres]
    python bench/journal_size.py fill --url sqlite:///big.db [--transfers N]
    python bench/journal_size.py measure --url sqlite:///big.db --empty-url sqlite:///e.db
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, select, text, update  # noqa: E402

from ledger.accounts import AccountSettings, balance, create_account  # noqa: E402
from ledger.agents import add_agent  # noqa: E402
from ledger.api_keys import create_key  # noqa: E402
from ledger.charges import charge  # noqa: E402
from ledger.cycles import month_key, utcnow  # noqa: E402
from ledger.db import make_engine, make_session_factory, transaction  # noqa: E402
from ledger.forecast import forecast  # noqa: E402
from ledger.journal.writer import JournalWriter, Request  # noqa: E402
from ledger.migrate import upgrade  # noqa: E402
from ledger.models import Account, Agent, Entry, Transfer  # noqa: E402
from ledger.units import credits  # noqa: E402
from ledger.usage_check import rebuild  # noqa: E402
from ledger.wallet import credit_wallet  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ACCOUNTS = 100
AGENTS = 5
DAYS = 365
TARGET = 1.2
MEMORY_MB = 200


def make_accounts(url: str, now: datetime, transfers: int) -> list[tuple[int, list[int]]]:
    """The accounts and agents, made by the ledger: (account id, agent ids) each. The plan
    covers a year of the history's charges (about 2 credits a transfer) and some left."""
    engine = make_engine(url)
    upgrade(engine)
    plan = credits(max(250_000, transfers * 3 // ACCOUNTS))

    def work(s):
        made = []
        for n in range(ACCOUNTS):
            account = create_account(
                s, AccountSettings(name=f"Account {n}", plan_credits=plan), now=now
            )
            agents = [
                add_agent(
                    s, account.id, f"agent-{k}", behaviour="use_balance" if k % 2 else "stop",
                    now=now,
                ).id
                for k in range(AGENTS)
            ]  # fmt: skip
            create_key(s, account.id, "bench", now=now)
            credit_wallet(s, account.id, credits(1_000_000), key="seed", kind="adjustment", now=now)
            made.append((account.id, agents))
        return made

    made = transaction(make_session_factory(engine), work)
    engine.dispose()
    return made


def history(
    accounts: list[tuple[int, list[int]]],
    transfers: int,
    now: datetime,
    first_entry: int,
    days: int = DAYS,
) -> Iterator[tuple[tuple, list[tuple]]]:
    """(entry, its transfers) in id order, spread over the last `days` days: message charges
    of 1-3 credits from plan credits, or (use_balance agents, one in five) from the wallet,
    and now and then a top-up."""
    rng = random.Random(11)
    start = now - timedelta(days=days)
    step = days * 86400 / max(transfers, 1)
    entry_id = first_entry
    made = 0
    while made < transfers:
        account_id, agents = accounts[rng.randrange(len(accounts))]
        at = start + timedelta(seconds=made * step)
        roll = rng.random()
        if roll < 0.002:
            amount = credits(rng.choice((100, 500, 1000)))
            entry = (entry_id, account_id, None, "topup", f"topup:{entry_id}", None, None, None,
                     amount, None, None, None, None, at)  # fmt: skip
            moves = [("topups", "wallet", amount)]
        else:
            agent = agents[rng.randrange(len(agents))]
            quantity = 1 + rng.randrange(3)
            amount = credits(quantity)
            wallet = agent % 2 == 1 and roll < 0.2
            source = "wallet" if wallet else "plan"
            key = f"msg:{entry_id:012d}"
            digest = hashlib.sha256(key.encode()).hexdigest()
            entry = (entry_id, account_id, agent, "usage", key, digest, "message", quantity,
                     amount, None, None, None, None, at)  # fmt: skip
            moves = [(source, "usage", amount)]
        yield entry, moves
        made += len(moves)
        entry_id += 1


def fill(
    url: str, transfers: int, now: datetime | None = None, days: int = DAYS
) -> dict[str, float]:
    """Make the accounts, then write `transfers` transfers of history over `days` days."""
    now = now or utcnow()
    t0 = time.perf_counter()
    accounts = make_accounts(url, now, transfers)
    engine = make_engine(url)
    first = _next_id(engine, Entry) + 1
    first_transfer = _next_id(engine, Transfer) + 1
    rows = history(accounts, transfers, now, first, days)
    sums = _load(engine, rows, first_transfer)
    _settle(engine, sums, now)
    with engine.begin() as conn:  # the usage rollup, as its migration fills it
        rebuild(conn)
    engine.dispose()
    seconds = time.perf_counter() - t0
    print(f"filled {url}: {transfers:,} transfers in {seconds:.0f} s", flush=True)
    return {"seconds": seconds}


def _next_id(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return conn.execute(select(text("max(id)")).select_from(model.__table__)).scalar() or 0


def _load(engine: Engine, rows: Iterator[tuple[tuple, list[tuple]]], first_transfer: int) -> dict:
    """Write the rows, secondary indexes built afterwards; the sums they move per account
    and per (agent, month)."""
    sums: dict = {}
    indexes = [*Entry.__table__.indexes, *Transfer.__table__.indexes]
    with engine.begin() as conn:
        for index in indexes:
            index.drop(conn)
    transfer_id = first_transfer
    postgres = engine.dialect.name == "postgresql"
    chunk_entries: list[tuple] = []
    chunk_transfers: list[tuple] = []

    def flush() -> None:
        (_copy if postgres else _insert)(engine, chunk_entries, chunk_transfers)
        chunk_entries.clear()
        chunk_transfers.clear()

    for entry, moves in rows:
        chunk_entries.append(entry)
        account_id, agent_id, at = entry[1], entry[2], entry[13]
        for debit, credit, amount in moves:
            chunk_transfers.append((transfer_id, entry[0], account_id, debit, credit, amount))
            transfer_id += 1
            for book, sign in ((debit, -1), (credit, 1)):
                if book in ("plan", "wallet"):
                    sums[(account_id, book)] = sums.get((account_id, book), 0) + sign * amount
            if agent_id is not None:
                month = (agent_id, f"{at.year:04d}-{at.month:02d}")
                sums[month] = sums.get(month, 0) + amount
        if len(chunk_transfers) >= 200_000:
            flush()
            print(f"  {transfer_id - first_transfer:,} transfers written", end="\r", flush=True)
    flush()
    print()
    with engine.begin() as conn:
        for index in indexes:
            index.create(conn)
        if postgres:
            for table in ("entries", "transfers"):
                conn.execute(
                    text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
                )
            conn.execute(text("ANALYZE"))
        else:
            conn.execute(text("ANALYZE"))
    return sums


_ENTRY_COLUMNS = ("id, account_id, agent_id, kind, idempotency_key, request_hash, unit, "
                  "quantity, amount, refused_reason, call_id, refund_of, memo, created_at")  # fmt: skip
_TRANSFER_COLUMNS = "id, entry_id, account_id, debit_book, credit_book, amount"


def _insert(engine: Engine, entries: list[tuple], transfers: list[tuple]) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.driver_connection.cursor()
        # Bench data, not money: no fsync, and a cache that holds the indexes being built.
        cur.execute("PRAGMA synchronous=OFF")
        cur.execute("PRAGMA cache_size=-524288")
        cur.execute("BEGIN IMMEDIATE")
        cur.executemany(
            f"INSERT INTO entries ({_ENTRY_COLUMNS}) VALUES ({', '.join('?' * 14)})",
            [(*e[:13], e[13].strftime("%Y-%m-%d %H:%M:%S.%f")) for e in entries],
        )
        cur.executemany(
            f"INSERT INTO transfers ({_TRANSFER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", transfers
        )
        cur.execute("COMMIT")
    finally:
        raw.driver_connection.execute("PRAGMA synchronous=NORMAL")
        raw.close()


def _copy(engine: Engine, entries: list[tuple], transfers: list[tuple]) -> None:
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        with conn.cursor() as cur:
            for table, columns, rows in (
                ("entries", _ENTRY_COLUMNS, entries),
                ("transfers", _TRANSFER_COLUMNS, transfers),
            ):
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    buffer = io.StringIO()
                    for row in rows:
                        buffer.write("\t".join(_copy_text(v) for v in row))
                        buffer.write("\n")
                    copy.write(buffer.getvalue())
        conn.commit()
    finally:
        raw.close()


def _copy_text(value: object) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _settle(engine: Engine, sums: dict, now: datetime) -> None:
    """The cached balances and this month's spends, as the history adds them up."""
    current = month_key(now, "UTC")

    def work(s):
        for account in s.execute(select(Account)).scalars():
            s.execute(
                update(Account)
                .where(Account.id == account.id)
                .values(
                    plan_balance=account.plan_balance + sums.get((account.id, "plan"), 0),
                    wallet_balance=account.wallet_balance + sums.get((account.id, "wallet"), 0),
                )
            )
        for agent in s.execute(select(Agent)).scalars():
            spend = agent.month_spend + sums.get((agent.id, current), 0)
            s.execute(
                update(Agent).where(Agent.id == agent.id).values(month=current, month_spend=spend)
            )

    transaction(make_session_factory(engine), work)


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

    def charge_one() -> object:
        request = Request(
            charge,
            (account_id, agent_id, "message", 1),
            {"idempotency_key": f"measure-{time.time_ns()}-{next(keys)}"},
            savepoint=False,
            order=account_id,
        )
        return loop.run_until_complete(writer.run(request))

    return {
        "charge (writer)": charge_one,
        "/v1/balance": lambda: transaction(sessions, lambda s: balance(s, account_id)),
        "/balance in Slack": lambda: load_dashboard(context, account_id),
        "7-day forecast": lambda: transaction(sessions, lambda s: forecast(s, account_id)),
    }


def measure(url: str, empty_url: str, runs: int = 200) -> bool:
    ok = True
    big, empty = operations(url), operations(empty_url)
    for name in big:
        for fn in (big[name], empty[name]):  # warm caches
            for _ in range(5):
                fn()
        slow, fast = p50_ms(
            [big[name], empty[name]],
            runs if "Slack" not in name and "forecast" not in name else max(5, runs // 10),
        )
        ratio = slow / fast
        met = ratio <= TARGET
        ok &= met
        print(
            f"{name:<20} p50 {slow:8.2f} ms on the big journal, {fast:6.2f} ms empty:"
            f" {ratio:5.2f}x (<= {TARGET}: {'met' if met else 'NOT met'})",
            flush=True,
        )
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
    big, empty = next(urls), next(urls)
    now = utcnow()
    fill(big, transfers, now)
    fill(empty, 0, now)
    print(f"{name}: measuring", flush=True)
    return measure(big, empty)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=["fill", "measure"], default=None)
    parser.add_argument("--url", help="the database to fill or measure")
    parser.add_argument("--empty-url", help="measure: the empty database to compare with")
    parser.add_argument("--transfers", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=DAYS, help="fill: days of history")
    parser.add_argument("--only", choices=["sqlite", "postgres"], default=None)
    parser.add_argument("--keep", help="directory for the SQLite files (kept afterwards)")
    args = parser.parse_args()
    if args.command == "fill":
        fill(args.url, args.transfers, days=args.days)
        return 0
    if args.command == "measure":
        return 0 if measure(args.url, args.empty_url) else 1
    ok = True
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory(prefix="creditbot-journal-") as tmp:
            where = Path(args.keep or tmp)
            where.mkdir(parents=True, exist_ok=True)
            urls = iter((f"sqlite:///{where}/big.db", f"sqlite:///{where}/empty.db"))
            ok &= run_backend("sqlite", urls, args.transfers)
    if args.only in (None, "postgres"):
        from tests.support.pg import PostgresUnavailable, create_database, start_cluster

        try:
            cluster = start_cluster(durable=True)
        except PostgresUnavailable as exc:
            print(f"postgres skipped: {exc}")
            return 0 if ok else 1
        try:
            urls = iter((create_database(cluster, "big"), create_database(cluster, "empty")))
            ok &= run_backend("postgres", urls, args.transfers)
        finally:
            cluster.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
