"""Message charges per second over HTTP, next to the HTTP floor, in the same run.

Starts the real server (`creditbot serve`, a subprocess on a free loopback port) and the
HTTP floor (bench/http_floor.py: a bare Starlette app on the same uvicorn stack, parsing
the same JSON body and answering a small JSON), and loads both with the same client
(bench/load.py: keep-alive connections, one request in flight on each, every request its
own Idempotency-Key) at 1, 8 and 32 connections, in alternating rounds (floor, charge,
floor, charge...) so machine noise hits both alike. Prints per concurrency: floor and
charge requests/s, their ratio, p50/p99 latency, the server CPU each request cost, and the
server's memory (RSS) before and after the load. On a SQLite file and on PostgreSQL (a
throwaway cluster with fsync on); the ledger is verified afterwards.

The client is aiohttp, as for issue 11's baseline; `--client raw` uses bare asyncio
streams, which cost the client less CPU than the floor costs the server (so the floor is
then the server's, not the client's).

Targets at 32 clients: ratio >= 0.5 on SQLite and >= 0.35 on PostgreSQL, p99 <= 20 ms on
both; at 1 client, p50 <= 1 ms on SQLite.

    python bench/api_charge.py [--seconds 3] [--rounds 2] [--clients 1,8,32]
                               [--only sqlite|postgres] [--accounts one|spread|both]
                               [--client aiohttp|raw]
    python bench/api_charge.py --workers 1,2 --only postgres   # charges/s by worker count
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import uvloop  # noqa: E402

from bench.load import Load, Target, aiohttp_load, charge_load  # noqa: E402
from ledger.accounts import AccountSettings, create_account  # noqa: E402
from ledger.agents import add_agent  # noqa: E402
from ledger.api_keys import create_key  # noqa: E402
from ledger.db import make_engine, make_session_factory, transaction  # noqa: E402
from ledger.migrate import upgrade  # noqa: E402
from ledger.units import credits  # noqa: E402
from ledger.verify import verify  # noqa: E402
from tests.support.api_server import Server, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
TARGET_RATIO = {"sqlite": 0.5, "postgres": 0.35}
TARGET_P99_MS = 20.0
TARGET_P50_ONE_CLIENT_MS = 1.0
TARGET_WORKERS = 1.6


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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its children (uvicorn workers)."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn workers), in MB."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    kids = [int(c) for c in found]
    return kids + [g for k in kids for g in _children(k)]


class Floor:
    """bench/http_floor.py as a child process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> Floor:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "http_floor.py"), "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://{HOST}:{self.port}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the HTTP floor did not start")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


@dataclass
class Side:
    """One side of a comparison, its rounds pooled."""

    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    #: Server CPU seconds over the rounds (warm-up included, so a little high).
    cpu: float = 0.0

    def add(self, load: Load, cpu: float = 0.0, ok: int = 200) -> None:
        self.requests += load.requests
        self.seconds += load.seconds
        self.latencies += load.latencies
        self.errors += sum(n for status, n in load.statuses.items() if status != ok)
        self.cpu += cpu

    @property
    def cpu_us(self) -> float:
        """Server CPU microseconds per request."""
        return self.cpu / self.requests * 1e6 if self.requests else 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        return Load(latencies=self.latencies).pct(p)


CLIENTS = {"aiohttp": aiohttp_load, "raw": charge_load}
CLIENT = ["aiohttp"]


def load(
    port: int, targets: list[Target], clients: int, seconds: float, tag: str, pid: int
) -> tuple[Load, float]:
    """One round of load (the client on uvloop) and the server CPU seconds it took."""
    before = cpu_seconds(pid)
    done = uvloop.run(CLIENTS[CLIENT[0]](HOST, port, targets, clients, seconds, tag))
    return done, cpu_seconds(pid) - before


def run_backend(
    name: str, url: str, floor: Floor, args: argparse.Namespace, spread: bool
) -> list[dict]:
    tenants = setup(url, accounts=max(args.clients) if spread else 1)
    targets = [Target(secret, agent) for _, agent, secret in tenants]
    mode = "spread" if spread else "one"
    rows = []
    with Server(url) as server:
        assert server.process is not None
        server_pid = server.process.pid
        before = rss_mb(server_pid)
        for clients in args.clients:
            charge, bare = Side(), Side()
            for r in range(args.rounds):
                tag = f"{name}-{mode}-{clients}-{r}"
                bare.add(*load(floor.port, targets, clients, args.seconds, "f-" + tag, floor.pid))
                charge.add(*load(server.port, targets, clients, args.seconds, tag, server_pid))
            row = {
                "db": name, "accounts": mode, "clients": clients,
                "floor": bare.rate, "charge": charge.rate, "ratio": charge.rate / bare.rate,
                "p50": charge.pct(50), "p99": charge.pct(99),
                "floor_p50": bare.pct(50), "floor_p99": bare.pct(99), "errors": charge.errors,
                "floor_cpu_us": bare.cpu_us, "cpu_us": charge.cpu_us,
            }  # fmt: skip
            rows.append(row)
            print(
                f"{name:8} {mode:>6} {clients:>3} clients  floor {bare.rate:6.0f}/s"
                f" (p50 {row['floor_p50']:5.2f} p99 {row['floor_p99']:6.2f} ms)"
                f"  charge {charge.rate:6.0f}/s  ratio {row['ratio']:4.2f}"
                f"  p50 {row['p50']:6.2f} ms  p99 {row['p99']:6.2f} ms"
                f"  server CPU/request: floor {bare.cpu_us:4.0f} us, charge {charge.cpu_us:4.0f} us"
                + (f"  ({charge.errors} non-200)" if charge.errors else ""),
                flush=True,
            )
        after = rss_mb(server_pid)
        print(f"{name:8} {mode:>6} server RSS {before:.0f} MB before, {after:.0f} MB after")
    engine = make_engine(url)
    problems = transaction(make_session_factory(engine), verify)
    engine.dispose()
    if problems:
        print(f"{name:8} ledger verify FAILED: {problems}", flush=True)
    return rows


def compare_workers(name: str, url: str, args: argparse.Namespace) -> None:
    """Charges/s of `creditbot serve --workers N` for each N, rounds alternating, each
    client on its own account."""
    tenants = setup(url, accounts=max(args.clients))
    targets = [Target(secret, agent) for _, agent, secret in tenants]
    servers = {n: Server(url, workers=n) for n in args.workers}
    try:
        for server in servers.values():
            server.start()
        for clients in args.clients:
            sides = {n: Side() for n in servers}
            for r in range(args.rounds):
                for n, server in servers.items():
                    tag = f"w{n}-{clients}-{r}"
                    assert server.process is not None
                    pid = server.process.pid
                    sides[n].add(*load(server.port, targets, clients, args.seconds, tag, pid))
            first = sides[args.workers[0]].rate
            for n, side in sides.items():
                print(
                    f"{name:8} {clients:>3} clients  --workers {n}: {side.rate:6.0f} charges/s"
                    f"  ({side.rate / first:4.2f}x)  p50 {side.pct(50):6.2f} ms"
                    f"  p99 {side.pct(99):6.2f} ms"
                    + (f"  ({side.errors} non-200)" if side.errors else ""),
                    flush=True,
                )
            if clients == 32 and len(sides) > 1:
                best = max(side.rate for side in sides.values()) / first
                verdict = "met" if best >= TARGET_WORKERS else "NOT met"
                print(f"target {name}, 32 clients: {best:.2f}x >= {TARGET_WORKERS}: {verdict}")
    finally:
        for server in servers.values():
            server.stop()


def targets_met(rows: list[dict]) -> bool:
    ok_all = True
    for row in rows:
        checks = []
        if row["clients"] == 32:
            checks.append(("ratio", row["ratio"], ">=", TARGET_RATIO[row["db"]]))
            checks.append(("p99 ms", row["p99"], "<=", TARGET_P99_MS))
        if row["clients"] == 1 and row["db"] == "sqlite":
            checks.append(("p50 ms", row["p50"], "<=", TARGET_P50_ONE_CLIENT_MS))
        for what, value, op, target in checks:
            ok = value >= target if op == ">=" else value <= target
            ok_all &= ok
            print(
                f"target {row['db']}, {row['accounts']} account(s), {row['clients']} client(s):"
                f" {what} {value:.2f} {op} {target:g}: {'met' if ok else 'NOT met'}"
            )
    return ok_all


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per round and side")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per side")
    parser.add_argument("--clients", type=_ints, default=[1, 8, 32], help="e.g. 1,8,32")
    parser.add_argument("--only", choices=["sqlite", "postgres"], default=None)
    parser.add_argument(
        "--accounts",
        choices=["one", "spread", "both"],
        default="both",
        help="all clients charge one account's agent (one hot row), or each its own account",
    )
    parser.add_argument(
        "--workers", type=_ints, default=None, help="compare `serve --workers N`, e.g. 1,2"
    )
    parser.add_argument(
        "--client",
        choices=sorted(CLIENTS),
        default="aiohttp",
        help="aiohttp (as issue 11's baseline) or raw (bare asyncio streams: less client CPU)",
    )
    args = parser.parse_args()
    CLIENT[0] = args.client
    modes = [False, True] if args.accounts == "both" else [args.accounts == "spread"]
    print(
        f"{args.rounds} alternating rounds of {args.seconds:g} s per side, {args.client} client;"
        f" {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows: list[dict] = []
    backends = []
    if args.only in (None, "sqlite"):
        backends.append("sqlite")
    if args.only in (None, "postgres"):
        backends.append("postgres")
    with tempfile.TemporaryDirectory(prefix="creditbot-bench-") as tmp, Floor() as floor:
        for name in backends:
            if name == "sqlite":
                urls = (f"sqlite:///{tmp}/bench-{n}.db" for n in range(3))
                cluster = None
            else:
                from tests.support.pg import PostgresUnavailable, create_database, start_cluster

                try:
                    cluster = start_cluster(durable=True)
                except PostgresUnavailable as exc:
                    print(f"postgres skipped: {exc}")
                    continue
                urls = (create_database(cluster, f"bench_api_{n}") for n in range(3))
            try:
                if args.workers:
                    compare_workers(name, next(urls), args)
                    continue
                for spread in modes:
                    rows += run_backend(name, next(urls), floor, args, spread)
            finally:
                if cluster is not None:
                    cluster.stop()
    if args.workers:
        return 0
    return 0 if targets_met(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
