"""Message charges per second over HTTP, next to the in-process charge rate.

Starts the real server (`creditbot serve`, a subprocess on a free loopback port) and charges
messages with keep-alive aiohttp clients at 1, 8 and 32 concurrency, on a SQLite file and
on PostgreSQL (a throwaway cluster with fsync on). In the same run, on the same database,
it times `ledger.charges.charge` in a loop in this process (one transaction per charge),
and prints requests/s, the ratio to that in-process rate, and p50/p99 latency.

Targets: ratio >= 0.3, p99 < 50 ms at 32 clients.

    python bench/api_charge.py [--seconds 3] [--workers 1] [--only sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402

from ledger.accounts import AccountSettings, create_account  # noqa: E402
from ledger.agents import add_agent  # noqa: E402
from ledger.api_keys import create_key  # noqa: E402
from ledger.charges import charge  # noqa: E402
from ledger.db import make_engine, make_session_factory, transaction  # noqa: E402
from ledger.migrate import upgrade  # noqa: E402
from ledger.units import credits  # noqa: E402
from ledger.verify import verify  # noqa: E402
from tests.support.api_server import Server  # noqa: E402

CONCURRENCY = (1, 8, 32)
TARGET_RATIO = 0.3
TARGET_P99_MS = 50.0


def setup(url: str, accounts: int = 1) -> list[tuple[int, int, str]]:
    """`accounts` accounts, each with a huge plan, one agent and an API key."""
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)

    def work(s):
        made = []
        for n in range(accounts):
            account = create_account(
                s, AccountSettings(name=f"Bench {n}", plan_credits=credits(1_000_000_000))
            )
            agent = add_agent(s, account.id, "bench")
            made.append((account.id, agent.id, create_key(s, account.id, "bench").secret))
        return made

    made = transaction(sessions, work)
    engine.dispose()
    return made


def in_process_rate(url: str, account_id: int, agent_id: int, seconds: float) -> float:
    """Charges per second through ledger.charges.charge, one transaction each."""
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    n = 0
    for _ in range(50):  # warm up
        n += 1
        transaction(
            sessions,
            lambda s, k=n: charge(s, account_id, agent_id, "message", 1, idempotency_key=f"w{k}"),
        )
    start = time.perf_counter()
    done = 0
    while time.perf_counter() - start < seconds:
        n += 1
        transaction(
            sessions,
            lambda s, k=n: charge(s, account_id, agent_id, "message", 1, idempotency_key=f"i{k}"),
        )
        done += 1
    rate = done / (time.perf_counter() - start)
    engine.dispose()
    return rate


async def http_load(
    base: str, tenants: list[tuple[int, int, str]], clients: int, seconds: float, tag: str
) -> tuple[float, list[float], int]:
    """`clients` keep-alive connections charging one message per request for `seconds`;
    client n charges the agent of tenant n modulo the number of tenants."""
    keys = itertools.count()
    latencies: list[float] = []
    errors = 0

    async def client(session: aiohttp.ClientSession, until: float, record: bool, n: int) -> None:
        nonlocal errors
        _, agent_id, secret = tenants[n % len(tenants)]
        body = {"agent_id": agent_id, "quantity": 1, "direction": "outbound"}
        auth = {"Authorization": f"Bearer {secret}"}
        while time.perf_counter() < until:
            headers = {**auth, "Idempotency-Key": f"{tag}-{next(keys)}"}
            t0 = time.perf_counter()
            async with session.post(base + "/v1/messages", json=body, headers=headers) as r:
                await r.read()
                ok = r.status == 200
            if record:
                latencies.append(time.perf_counter() - t0)
                errors += not ok

    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        warm = time.perf_counter() + min(0.5, seconds / 4)
        await asyncio.gather(*(client(session, warm, False, n) for n in range(clients)))
        start = time.perf_counter()
        until = start + seconds
        await asyncio.gather(*(client(session, until, True, n) for n in range(clients)))
        elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, latencies, errors


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def run_backend(name: str, url: str, seconds: float, workers: int, spread: bool) -> list[dict]:
    tenants = setup(url, accounts=max(CONCURRENCY) if spread else 1)
    account_id, agent_id, _ = tenants[0]
    results = []
    with Server(url, workers=workers) as server:
        for clients in CONCURRENCY:
            # The in-process rate is timed next to each HTTP run, so both see the same
            # database size and the same machine noise.
            local = in_process_rate(url, account_id, agent_id, seconds / 2)
            rate, lat, errors = asyncio.run(
                http_load(server.url, tenants, clients, seconds, f"{name}-{clients}")
            )
            row = {
                "db": name,
                "accounts": "spread" if spread else "one",
                "clients": clients,
                "rps": rate,
                "in_process": local,
                "ratio": rate / local,
                "p50": pct(lat, 50),
                "p99": pct(lat, 99),
                "errors": errors,
            }
            results.append(row)
            print(
                f"{name:8} {row['accounts']:>6} {clients:>3} clients  {rate:6.0f} req/s  "
                f"in-process {local:5.0f}/s  ratio {row['ratio']:4.2f}  "
                f"p50 {row['p50']:6.1f} ms  p99 {row['p99']:6.1f} ms"
                + (f"  ({errors} non-200)" if errors else ""),
                flush=True,
            )
    engine = make_engine(url)
    problems = transaction(make_session_factory(engine), verify)
    engine.dispose()
    if problems:
        print(f"{name:8} ledger verify FAILED: {problems}", flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per configuration")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers")
    parser.add_argument("--only", choices=["sqlite", "postgres"], default=None)
    parser.add_argument(
        "--accounts",
        choices=["one", "spread", "both"],
        default="both",
        help="all clients charge one account's agent (one hot row), or each its own account",
    )
    args = parser.parse_args()
    modes = [False, True] if args.accounts == "both" else [args.accounts == "spread"]

    rows: list[dict] = []
    print(
        f"creditbot serve with {args.workers} worker(s), {args.seconds:g} s per run; "
        "in-process = ledger.charges.charge in a loop in this process, one transaction each",
        flush=True,
    )
    if args.only in (None, "sqlite"):
        for spread in modes:
            with tempfile.TemporaryDirectory(prefix="creditbot-bench-") as tmp:
                url = f"sqlite:///{tmp}/bench.db"
                rows += run_backend("sqlite", url, args.seconds, args.workers, spread)
    if args.only in (None, "postgres"):
        from tests.support.pg import PostgresUnavailable, create_database, start_cluster

        try:
            cluster = start_cluster(durable=True)
        except PostgresUnavailable as exc:
            print(f"postgres skipped: {exc}")
        else:
            try:
                for spread in modes:
                    url = create_database(cluster, f"bench_api_{int(spread)}")
                    rows += run_backend("postgres", url, args.seconds, args.workers, spread)
            finally:
                cluster.stop()

    failed = False
    for row in rows:
        if row["clients"] == 32:
            ok = row["ratio"] >= TARGET_RATIO and row["p99"] < TARGET_P99_MS
            failed |= not ok
            print(
                f"target at 32 clients, {row['db']}, {row['accounts']} account(s): ratio {row['ratio']:.2f} (>= {TARGET_RATIO}),"
                f" p99 {row['p99']:.1f} ms (< {TARGET_P99_MS:g}): {'met' if ok else 'NOT met'}"
            )
    if rows:
        print(f"median ratio over all runs: {statistics.median(r['ratio'] for r in rows):.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
