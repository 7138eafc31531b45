"""Charges per second through the ledger, in process, next to a raw-SQL floor.

On a SQLite file and on PostgreSQL (a throwaway cluster with fsync on, as production would
run). The floor does the least a charge can, one transaction each: insert a usage row with
a unique key, conditionally decrement a balance, insert two postings, commit -- through the
bare DB-API driver. Beside it, in the same process on the same database, interleaved in
blocks so machine noise hits all alike:

- the same raw SQL through SQLAlchemy's Connection (what any code on this stack pays);
- the statements a message charge runs, the ledger's own, on the bare DB-API connection
  with none of the ledger's Python: one transaction each, and 32 to a transaction (on one
  account, and on 32 accounts: what the writer's batch of 32 callers commits at once);
- `ledger.charges.charge`, one transaction each (`ledger.db.transaction`, as the CLI and
  the scheduler run it);
- the journal's writer with one caller at a time (a batch of one: one commit per charge);
- the journal's writer with 32 callers at once (group commit: many charges per commit);
- the same, each caller on an account of its own ("spread": a batch of many accounts).

Targets: the ledger at >= 0.5x the raw DB-API floor, and the batched writer beyond it.

Each raw side holds a connection of its own for the whole run (not one the pool also hands
to the writer), and on SQLite each side's block ends with a checkpoint timed with it: each
side pays for copying into the database what it wrote (`wal_checkpointer`).

    python bench/ledger_charge.py [--charges 4000] [--only sqlite|postgres] [--profile]
        [--accounts one|spread] (which writer --profile runs)

Each side also prints its CPU time per charge (`time.process_time`): on a shared machine
that is the figure to trust. `--profile` runs only the writer with 32 callers, under
cProfile, and prints its top functions by own time (tottime).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.pool import PoolProxiedConnection

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.accounts import AccountSettings, create_account  # noqa: E402
from ledger.agents import add_agent  # noqa: E402
from ledger.api_keys import KeyCache, as_key_holder, create_key, hash_secret  # noqa: E402
from ledger.charges import charge  # noqa: E402
from ledger.cycles import day_and_month  # noqa: E402
from ledger.db import make_engine, make_session_factory, transaction  # noqa: E402
from ledger.journal import _rollup, _sql  # noqa: E402
from ledger.journal.writer import STRIPES, JournalWriter, Request  # noqa: E402
from ledger.migrate import upgrade  # noqa: E402
from ledger.policy import Snapshot  # noqa: E402
from ledger.units import credits  # noqa: E402
from ledger.verify import verify  # noqa: E402

FLOOR_DDL = [
    "CREATE TABLE floor_balance (id INTEGER PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance >= 0))",
    "CREATE TABLE floor_usage (id {serial} PRIMARY KEY, key VARCHAR(200) NOT NULL UNIQUE, amount BIGINT NOT NULL)",
    "CREATE TABLE floor_postings (id {serial} PRIMARY KEY, usage_id BIGINT NOT NULL, book VARCHAR(16) NOT NULL, amount BIGINT NOT NULL)",
    "INSERT INTO floor_balance (id, balance) VALUES (1, 1000000000000)",
]


#: The bare DB-API connections the raw sides run on, held for the whole run: a proxy that is
#: dropped goes back to the pool, and its connection on to whoever asks next.
HELD: list[PoolProxiedConnection] = []


def held_connection(engine: Engine) -> PoolProxiedConnection:
    """A pooled connection of `engine`'s, for one raw side, held until the run ends."""
    raw = engine.raw_connection()
    HELD.append(raw)
    return raw


def wal_checkpointer(engine: Engine) -> Callable[[], None]:
    """SQLite: copy the write-ahead log into the database and empty it at the end of each
    side's block, timed with the block. Otherwise one side would pay for another's pages:
    a connection checkpoints as its commit takes the log past 1,000 pages, and every read
    searches a log that grows with what the other sides wrote. (The journal writer's own
    checkpointer thread may be mid-checkpoint: wait for it.) PostgreSQL checkpoints in the
    background: nothing to do."""
    if engine.dialect.name != "sqlite":
        return lambda: None
    cursor = held_connection(engine).driver_connection.cursor()

    def checkpoint() -> None:
        for _ in range(1000):
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            if not cursor.fetchone()[0]:  # not busy: the log is empty
                return
            time.sleep(0.001)
        raise SystemExit("the write-ahead log stayed in use: no checkpoint for a second")

    return checkpoint


def floor_charger(engine, dialect: str) -> Callable[[int], None]:
    """The raw floor on the bare DB-API connection."""
    raw = held_connection(engine)
    dbapi = raw.driver_connection
    serial = "INTEGER" if dialect == "sqlite" else "BIGSERIAL"
    cur = dbapi.cursor()
    if dialect == "sqlite":
        dbapi.isolation_level = None
        for ddl in FLOOR_DDL:
            cur.execute(ddl.format(serial=serial))
        ph = "?"
    else:
        dbapi.autocommit = False
        for ddl in FLOOR_DDL:
            cur.execute(ddl.format(serial=serial))
        dbapi.commit()
        ph = "%s"
    insert_usage = f"INSERT INTO floor_usage (key, amount) VALUES ({ph}, {ph}) RETURNING id"
    decrement = (
        f"UPDATE floor_balance SET balance = balance - {ph} WHERE id = 1 AND balance >= {ph}"
    )
    posting = f"INSERT INTO floor_postings (usage_id, book, amount) VALUES ({ph}, {ph}, {ph})"

    def one(n: int) -> None:
        if dialect == "sqlite":
            cur.execute("BEGIN IMMEDIATE")
        cur.execute(insert_usage, (f"floor-{n}", 1000))
        usage_id = cur.fetchone()[0]
        cur.execute(decrement, (1000, 1000))
        assert cur.rowcount == 1
        cur.execute(posting, (usage_id, "plan", -1000))
        cur.execute(posting, (usage_id, "usage", 1000))
        if dialect == "sqlite":
            cur.execute("COMMIT")
        else:
            dbapi.commit()

    return one


def sqlalchemy_floor_charger(engine, dialect: str) -> Callable[[int], None]:
    """The same raw SQL through SQLAlchemy's Connection (pool, events, driver): what any
    code on this stack pays before doing anything of its own."""
    ph = {"sqlite": "?", "postgresql": "%s"}[dialect]
    insert_usage = f"INSERT INTO floor_usage (key, amount) VALUES ({ph}, {ph}) RETURNING id"
    decrement = (
        f"UPDATE floor_balance SET balance = balance - {ph} WHERE id = 1 AND balance >= {ph}"
    )
    posting = f"INSERT INTO floor_postings (usage_id, book, amount) VALUES ({ph}, {ph}, {ph})"

    def one(n: int) -> None:
        with engine.begin() as conn:
            usage_id = conn.exec_driver_sql(insert_usage, (f"sa-floor-{n}", 1000)).scalar_one()
            assert conn.exec_driver_sql(decrement, (1000, 1000)).rowcount == 1
            conn.exec_driver_sql(posting, (usage_id, "plan", -1000))
            conn.exec_driver_sql(posting, (usage_id, "usage", 1000))

    return one


def charge_rows_charger(
    engine: Engine, accounts: list[tuple[int, int]], per_transaction: int = 1
) -> Callable[[int], None]:
    """The statements a message charge runs, the ledger's own (ledger/journal/_sql.py), on
    the bare DB-API connection, with none of the ledger's Python: the locked read with the
    key lookup, the guarded balance move, the entry, its transfer, the agent's month spend,
    the day's usage row. What the floor's four statements on three small tables become on
    the ledger's schema, which the rest of the ledger adds to: one transaction each, or
    `per_transaction` charges to a transaction (one commit for them all, as a writer's
    batch commits; charge n begins one when n is a multiple of it). Charge n is on
    `accounts[n % len(accounts)]` (account id, agent id)."""
    raw = held_connection(engine)
    dbapi = raw.driver_connection
    dialect = engine.dialect
    sqlite_ = dialect.name == "sqlite"
    if sqlite_:
        dbapi.isolation_level = None
    else:
        dbapi.autocommit = False
    cur = dbapi.cursor()
    compiled = {
        name: statement._for(dialect)
        for name, statement in {
            "read": _sql.READ_FOR_CHARGE,
            "move": _sql.MOVE_AND_ACCOUNT_SPEND,
            "entry": _sql.INSERT_ENTRY,
            "transfer": _sql.INSERT_TRANSFER,
            "spend": _sql.SPEND,
            "usage": _rollup.UPSERT[dialect.name],
        }.items()
    }

    def execute(name: str, params: dict) -> None:
        statement = compiled[name]
        cur.execute(statement.sql, statement.parameters(params))

    def one(n: int) -> None:
        now = datetime.now(UTC)
        account_id, agent_id = accounts[n % len(accounts)]
        key = f"rows-{len(accounts)}-{per_transaction}-{n}"
        first, last = n % per_transaction == 0, n % per_transaction == per_transaction - 1
        if sqlite_ and first:
            cur.execute("BEGIN IMMEDIATE")
        execute("read", {"account_id": account_id, "agent_id": agent_id, "key": key})
        state = Snapshot._make(cur.fetchone()[:-1])
        day, month = day_and_month(now, state.timezone)
        cost = state.message_rate
        execute("move", {"account_id": account_id, "plan": -cost, "wallet": 0,
                         "account_month": month,
                         "account_month_spend": state.account_month_spend + cost})  # fmt: skip
        assert cur.fetchone() is not None
        execute("entry", {"account_id": account_id, "agent_id": agent_id, "kind": "usage",
                          "idempotency_key": key, "request_hash": None, "unit": "message",
                          "quantity": 1, "amount": cost, "refused_reason": None,
                          "call_id": None, "refund_of": None, "memo": None,
                          "created_at": now, "request_id": None})  # fmt: skip
        entry_id = cur.fetchone()[0]
        execute("transfer", {"entry_id": entry_id, "account_id": account_id,
                             "debit_book": "plan", "credit_book": "usage", "amount": cost})  # fmt: skip
        execute("spend", {"agent_id": agent_id, "month": month,
                          "month_spend": state.month_spend + cost})  # fmt: skip
        execute("usage", {"account_id": account_id, "day": day, "agent_id": agent_id,
                          "unit": "message", "quantity": 1, "from_plan": cost,
                          "from_wallet": 0})  # fmt: skip
        if not last:
            return
        if sqlite_:
            cur.execute("COMMIT")
        else:
            dbapi.commit()

    return one


#: The server's memory of API keys (bot/http/api/authentication.py keeps one per app), and
#: the hash of each bench account's key.
KEYS = KeyCache()
KEY_HASHES: dict[int, str] = {}


def ledger_account(engine, name: str = "Bench") -> tuple[int, int]:
    def setup(s):
        account = create_account(
            s, AccountSettings(name=name, plan_credits=credits(100_000_000), cycle_anchor_day=1)
        )
        KEY_HASHES[account.id] = hash_secret(create_key(s, account.id).secret)
        return account.id, add_agent(s, account.id, "bench-agent").id

    return transaction(make_session_factory(engine), setup)


def spread_accounts(engine, n: int) -> list[tuple[int, int]]:
    """`n` accounts with an agent each: one per caller of the spread side."""
    return [ledger_account(engine, f"Bench {i}") for i in range(n)]


def ledger_charger(engine, account_id: int, agent_id: int) -> Callable[[int], None]:
    """`ledger.charges.charge`, one transaction each."""
    sessions = make_session_factory(engine)

    def one(n: int) -> None:
        result = transaction(
            sessions,
            lambda s: charge(s, account_id, agent_id, "message", 1, idempotency_key=f"bench-{n}"),
        )
        assert result.allowed

    return one


def message_request(account_id: int, agent_id: int, key: str) -> Request:
    """One message charge for the journal's writer, as /v1/messages queues it: the
    account's API key checked in the batch's transaction (`as_key_holder`)."""
    return Request(
        as_key_holder,
        (KEYS, KEY_HASHES[account_id], charge, agent_id, "message", 1),
        {"idempotency_key": key},
        savepoint=False,
        order=account_id,
    )


def writer_block(
    writer: JournalWriter,
    accounts: list[tuple[int, int]],
    callers: int,
    tag: str,
) -> Callable[[Sequence[int]], list[float]]:
    """Charges through the journal's writer from `callers` concurrent callers on one event
    loop, caller i on `accounts[i % len(accounts)]` (account id, agent id); each charge's
    latency (its wait included)."""
    loop = asyncio.new_event_loop()

    async def block(numbers: Sequence[int]) -> list[float]:
        todo = iter(numbers)
        latencies: list[float] = []

        async def caller(i: int) -> None:
            account_id, agent_id = accounts[i % len(accounts)]
            for n in todo:
                request = message_request(account_id, agent_id, f"{tag}-{n}")
                t0 = time.perf_counter()
                result = await writer.run(request)
                latencies.append(time.perf_counter() - t0)
                assert result.allowed

        await asyncio.gather(*(caller(i) for i in range(callers)))
        return latencies

    return lambda numbers: loop.run_until_complete(block(numbers))


def timed(one: Callable[[int], None]) -> Callable[[Sequence[int]], list[float]]:
    def block(numbers: Sequence[int]) -> list[float]:
        latencies = []
        for n in numbers:
            t0 = time.perf_counter()
            one(n)
            latencies.append(time.perf_counter() - t0)
        return latencies

    return block


TITLES = {
    "floor": "raw DB-API floor",
    "sa_floor": "raw SQL via SQLAlchemy",
    "rows": "charge's SQL, raw",
    "rows_32": "charge's SQL, raw, 32/txn",
    "rows_32s": "the same, on 32 accounts",
    "ledger": "ledger charge, own txn",
    "writer_1": "writer, 1 caller",
    "writer_32": "writer, 32 callers",
    "writer_32s": "writer, 32 on 32 accounts",
}


def run(
    name: str, url: str, charges: int, block: int = 256, stripes: int = STRIPES
) -> dict[str, float]:
    engine = make_engine(url)
    upgrade(engine)
    dialect = engine.dialect.name
    account_id, agent_id = ledger_account(engine)
    rows = [ledger_account(engine, "Rows")]
    rows_spread = [ledger_account(engine, f"Rows {i}") for i in range(32)]
    spread = spread_accounts(engine, 32)
    writer = JournalWriter(engine, stripes=stripes)
    one = [(account_id, agent_id)]
    sides = {
        "floor": timed(floor_charger(engine, dialect)),
        "sa_floor": timed(sqlalchemy_floor_charger(engine, dialect)),
        "rows": timed(charge_rows_charger(engine, rows)),
        "rows_32": timed(charge_rows_charger(engine, rows, 32)),
        "rows_32s": timed(charge_rows_charger(engine, rows_spread, 32)),
        "ledger": timed(ledger_charger(engine, account_id, agent_id)),
        "writer_1": writer_block(writer, one, 1, "w1"),
        "writer_32": writer_block(writer, one, 32, "w32"),
        "writer_32s": writer_block(writer, spread, 32, "w32s"),
    }
    for fn in sides.values():  # warm caches, compiled statements, the pool
        fn(range(-block, 0))
    checkpoint = wal_checkpointer(engine)
    checkpoint()
    times: dict[str, list[float]] = {label: [] for label in sides}
    elapsed: dict[str, float] = dict.fromkeys(sides, 0.0)
    cpu: dict[str, float] = dict.fromkeys(sides, 0.0)
    n = 0
    while n < charges:
        for label, fn in sides.items():
            c0, t0 = time.process_time(), time.perf_counter()
            times[label] += fn(range(n, n + block))
            checkpoint()  # each side pays for copying what it wrote into the database
            elapsed[label] += time.perf_counter() - t0
            cpu[label] += time.process_time() - c0
        n += block
    writer.close()
    while HELD:
        HELD.pop().close()
    problems = transaction(make_session_factory(engine), verify)
    engine.dispose()
    if problems:
        raise SystemExit(f"ledger verify failed after the benchmark: {problems}")
    result = {}
    for label, samples in times.items():
        samples.sort()
        result[f"{label}_rate"] = len(samples) / elapsed[label]
        result[f"{label}_p50_ms"] = statistics.median(samples) * 1000
        result[f"{label}_p99_ms"] = samples[int(len(samples) * 0.99)] * 1000
        result[f"{label}_cpu_us"] = cpu[label] / len(samples) * 1e6
    floor = result["floor_rate"]
    for label, title in TITLES.items():
        rate = result[f"{label}_rate"]
        print(
            f"{name:<9} {title:<24} {rate:8.0f} charges/s  {rate / floor:5.2f}x floor"
            f"  p50 {result[f'{label}_p50_ms']:6.2f} ms  p99 {result[f'{label}_p99_ms']:6.2f} ms"
            f"  cpu {result[f'{label}_cpu_us']:6.0f} us/charge",
            flush=True,
        )
    for label in ("ledger", "writer_1", "writer_32", "writer_32s"):
        ratio = result[f"{label}_rate"] / floor
        target = 1.0 if label.startswith("writer_32") else 0.5
        verdict = "met" if ratio >= target else "NOT met"
        print(f"{name:<9} target {TITLES[label]}: {ratio:.2f}x >= {target:g}x floor: {verdict}")
    return result


def profile(
    name: str,
    url: str,
    charges: int,
    callers: int = 32,
    spread: bool = False,
    top: int = 30,
    stripes: int = STRIPES,
) -> None:
    """The writer with `callers` callers (with `spread`, each on an account of its own)
    under cProfile: its top functions by own time."""
    engine = make_engine(url)
    upgrade(engine)
    accounts = spread_accounts(engine, callers) if spread else [ledger_account(engine)]
    writer = JournalWriter(engine, stripes=stripes)
    block = writer_block(writer, accounts, callers, "prof")
    block(range(-200, 0))  # warm up outside the profile
    profiler = cProfile.Profile()
    c0 = time.process_time()
    profiler.enable()
    block(range(charges))
    profiler.disable()
    cpu = (time.process_time() - c0) / charges * 1e6
    writer.close()
    engine.dispose()
    print(
        f"{name}: writer, {callers} callers on {len(accounts)} account(s),"
        f" {charges} charges under cProfile:"
        f" {cpu:.0f} us CPU/charge"
    )
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=4000, help="charges per side per database")
    parser.add_argument("--only", choices=["sqlite", "postgres"], default=None)
    parser.add_argument(
        "--profile", action="store_true", help="profile the writer with 32 callers only"
    )
    parser.add_argument("--callers", type=int, default=32, help="callers of --profile")
    parser.add_argument(
        "--accounts",
        choices=["one", "spread"],
        default="one",
        help="--profile: all callers on one account, or each on its own",
    )
    parser.add_argument(
        "--stripes", type=int, default=STRIPES, help="PostgreSQL writer threads (stripes)"
    )
    args = parser.parse_args()
    with open("/proc/loadavg") as loadavg:
        print(f"load average {' '.join(loadavg.read().split()[:3])}")

    def side(name: str, url: str, charges: int) -> None:
        if args.profile:
            profile(
                name, url, charges, args.callers, args.accounts == "spread", stripes=args.stripes
            )
        else:
            run(name, url, charges, stripes=args.stripes)

    if not args.profile:
        print(f"{args.charges} charges per side, interleaved in blocks of 256")
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            side("sqlite", f"sqlite:///{tmp}/bench.db", args.charges)
    if args.only in (None, "postgres"):
        from tests.support.pg import PostgresUnavailable, create_database, start_cluster

        try:
            cluster = start_cluster(durable=True)
        except PostgresUnavailable as exc:
            print(f"postgres   skipped: {exc}")
            return
        try:
            side("postgres", create_database(cluster, "bench"), args.charges)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
