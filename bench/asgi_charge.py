"""Server CPU per message charge, with the ASGI app called in process, next to the floor.

No sockets, no client: each request is a scope, a body and a `send` that keeps what it is
given, handed to the app's ASGI callable on one event loop (uvloop, as `creditbot serve`
runs). The charge app is `bot.http.app.create_app` over a SQLite file or PostgreSQL (a
throwaway cluster with fsync on), every request a message charge on one account with its
own Idempotency-Key; the floor is bench/http_floor.py's bare Starlette app, called the same
way. Rounds alternate (floor, charge, floor, charge...) at 1 request at a time and at 32
concurrent, and each side's best round is printed as process CPU time per request
(time.process_time: every thread of this process, so PostgreSQL's writer threads count) and
the ratio charge/floor. CPU per request is what a machine shared with other work still
measures; wall time and requests/s are printed for reference only.

    python bench/asgi_charge.py [--requests 2000] [--rounds 5] [--concurrency 1,32]
                                [--only sqlite|postgres] [--profile]

`--profile` runs one more round of the charge at the largest concurrency under cProfile
and prints its functions sorted by own time (tottime). `--http-only` answers every charge
with the same allowed `Charge` instead of queueing it to the journal's writer: what the
HTTP side alone costs (keys, validation, answer, middlewares), next to the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvloop  # noqa: E402

from bench.http_floor import app as floor_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.context import AppContext  # noqa: E402
from bot.http.app import create_app  # noqa: E402
from ledger.accounts import AccountSettings, create_account  # noqa: E402
from ledger.agents import add_agent  # noqa: E402
from ledger.api_keys import create_key  # noqa: E402
from ledger.db import make_engine, make_session_factory, transaction  # noqa: E402
from ledger.migrate import upgrade  # noqa: E402
from ledger.units import credits  # noqa: E402
from ledger.verify import verify  # noqa: E402

ASGIApp = Callable[..., Any]
_keys = itertools.count()


def setup(url: str) -> tuple[int, str]:
    """One account with a huge plan, one agent and an API key: (agent id, key)."""
    engine = make_engine(url)
    upgrade(engine)

    def work(s: Any) -> tuple[int, str]:
        account = create_account(
            s, AccountSettings(name="Bench", plan_credits=credits(1_000_000_000))
        )
        agent = add_agent(s, account.id, "bench")
        return agent.id, create_key(s, account.id, "bench").secret

    made = transaction(make_session_factory(engine), work)
    engine.dispose()
    return made


class Charges:
    """Message charge requests for one agent and key, each with its own Idempotency-Key."""

    def __init__(self, agent_id: int, secret: str, tag: str) -> None:
        self.body = b'{"agent_id": %d, "quantity": 1, "direction": "outbound"}' % agent_id
        self.auth = f"Bearer {secret}".encode()
        self.tag = tag

    def scope(self) -> dict[str, Any]:
        key = f"{self.tag}-{next(_keys)}".encode()
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/messages",
            "raw_path": b"/v1/messages",
            "root_path": "",
            "query_string": b"",
            "server": ("127.0.0.1", 3000),
            "client": ("127.0.0.1", 50000),
            "headers": [
                (b"host", b"127.0.0.1:3000"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(self.body)).encode()),
                (b"authorization", self.auth),
                (b"idempotency-key", key),
            ],
        }


async def one(app: ASGIApp, charges: Charges) -> int:
    """One request through `app`; its status."""
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # a client that stays: no disconnect
        sent = True
        return {"type": "http.request", "body": charges.body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(charges.scope(), receive, send)
    return status


async def run_round(app: ASGIApp, charges: Charges, requests: int, concurrency: int) -> dict:
    """`requests` requests, `concurrency` at a time; CPU and wall seconds, failures."""
    per_worker = requests // concurrency
    failures = 0

    async def worker() -> None:
        nonlocal failures
        for _ in range(per_worker):
            if await one(app, charges) != 200:
                failures += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    done = per_worker * concurrency
    return {
        "cpu_us": (time.process_time() - cpu) / done * 1e6,
        "wall_us": (time.perf_counter() - wall) / done * 1e6,
        "failures": failures,
    }


async def lifespan_started(app: Any) -> Any:
    """The app's lifespan entered (the writer is closed when it exits)."""
    context = app.router.lifespan_context(app)
    await context.__aenter__()
    return context


async def measure(name: str, url: str, args: argparse.Namespace) -> None:
    agent_id, secret = setup(url)
    context = AppContext(
        settings=Settings(database_url=url, run_scheduler=False), engine=make_engine(url)
    )
    app = create_app(context)
    lifespan = await lifespan_started(app)
    charges = Charges(agent_id, secret, f"{name}-{os.getpid()}")
    floor = Charges(agent_id, secret, "floor")
    try:
        await run_round(app, charges, 64, 32)  # warm: the key is cached, the code imported
        await run_round(floor_app, floor, 64, 32)
        for concurrency in args.concurrency:
            best: dict[str, dict] = {}
            for _ in range(args.rounds):
                for side, target, reqs in (("floor", floor_app, floor), ("charge", app, charges)):
                    result = await run_round(target, reqs, args.requests, concurrency)
                    if result["failures"]:
                        print(f"  {side}: {result['failures']} answers were not 200")
                    if side not in best or result["cpu_us"] < best[side]["cpu_us"]:
                        best[side] = result
            f, c = best["floor"], best["charge"]
            print(
                f"{name:8} {concurrency:>3} concurrent  floor CPU {f['cpu_us']:5.0f} us"
                f"  charge CPU {c['cpu_us']:5.0f} us  ratio floor/charge"
                f" {f['cpu_us'] / c['cpu_us']:4.2f}  (wall per request: floor"
                f" {f['wall_us']:5.0f} us, charge {c['wall_us']:5.0f} us)",
                flush=True,
            )
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await run_round(app, charges, args.requests, max(args.concurrency))
            profiler.disable()
            print(f"\n{name}: profile of {args.requests} charges, by own time")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile_lines)
    finally:
        await lifespan.__aexit__(None, None, None)
        context.engine.dispose()
    engine = make_engine(url)
    problems = transaction(make_session_factory(engine), verify)
    engine.dispose()
    if problems:
        print(f"{name:8} ledger verify FAILED: {problems}", flush=True)


def skip_the_ledger() -> None:
    """Every charge answered at once with one allowed Charge (--http-only)."""
    from bot.http.api.authentication import ApiKeyAccount
    from ledger.charges import Charge

    answer = Charge(1, True, None, 1000, 1000, 0, 10**12, 0, "active")

    async def charged(self: ApiKeyAccount, service: Any, /, *args: Any, **kwargs: Any) -> Any:
        return answer

    ApiKeyAccount.charge = charged  # type: ignore[method-assign]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per round and side")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per side")
    parser.add_argument("--concurrency", type=_ints, default=[1, 32], help="e.g. 1,32")
    parser.add_argument("--only", choices=["sqlite", "postgres"], default=None)
    parser.add_argument("--profile", action="store_true", help="cProfile one charge round")
    parser.add_argument("--profile-lines", type=int, default=40)
    parser.add_argument(
        "--http-only", action="store_true", help="no ledger: every charge answers at once"
    )
    args = parser.parse_args()
    if args.http_only:
        skip_the_ledger()
    print(
        f"{args.rounds} alternating rounds of {args.requests} requests per side, best round;"
        f" {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="creditbot-asgi-") as tmp:
        if args.only in (None, "sqlite"):
            uvloop.run(measure("sqlite", f"sqlite:///{tmp}/bench.db", args))
        if args.only in (None, "postgres"):
            from tests.support.pg import PostgresUnavailable, create_database, start_cluster

            try:
                cluster = start_cluster(durable=True)
            except PostgresUnavailable as exc:
                print(f"postgres skipped: {exc}")
                return 0
            try:
                uvloop.run(measure("postgres", create_database(cluster, "bench_asgi"), args))
            finally:
                cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
