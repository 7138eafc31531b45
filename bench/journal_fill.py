"""Fill a database with a journal of any size, fast and in bulk: what bench/journal_size.py
measures on.

`fill` makes 100 accounts with the ledger itself (agents, keys, a wallet), then writes
`transfers` transfers of history over `days` days straight into the journal's tables (COPY
on PostgreSQL, executemany in big transactions on SQLite, secondary indexes built after the
load): message charges from plan credits and from the wallet, and top-ups. The cached
balances, month spends and the usage rollup are set to what the history adds up to, so
`ledger verify` passes.
"""

from __future__ import annotations

import hashlib
import io
import random
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, text, update

from ledger.accounts import AccountSettings, create_account
from ledger.agents import add_agent
from ledger.api_keys import create_key
from ledger.cycles import month_key, utcnow
from ledger.db import make_engine, make_session_factory, transaction
from ledger.migrate import upgrade
from ledger.models import Account, Agent, Entry, Transfer
from ledger.units import credits
from ledger.usage_check import rebuild
from ledger.wallet import credit_wallet

ACCOUNTS = 100
AGENTS = 5
DAYS = 365


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
