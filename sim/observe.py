"""What the simulation reads back from the database after each step: the journal entries
and outbox messages committed since the last look, the accounts and agents as they are
now, the recharge attempts that are new or moved, and the alerts delivered since the step
began.

The checker reads after every step, so it reads the SQLite file straight through the
standard library's driver, in one read transaction, with SQL of its own: the product's
sessions and SQLAlchemy's statement machinery would cost more than the step itself.
Values come back as the product wrote them: datetimes as aware UTC, dates, booleans, JSON.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

#: Account columns that only settings change (an admin or an operator).
SETTINGS = ("plan_credits_per_cycle", "message_rate", "call_minute_rate", "per_second_billing",
            "credits_per_unit", "plan_low_percent", "wallet_low_credits", "topup_min_minor",
            "topup_max_minor")  # fmt: skip
RECHARGE_SETTINGS = ("auto_recharge_enabled", "auto_recharge_threshold_minor",
                     "auto_recharge_amount_minor", "auto_recharge_monthly_cap_minor")  # fmt: skip
_BOOLEAN = {"per_second_billing", "plan_exhausted_alerted", "auto_recharge_enabled",
            "auto_recharge_paused", "recharge_requested", "paused_auto_recharge", "per_second"}  # fmt: skip
_TIMES = {"created_at", "next_renewal_at", "finished_at", "next_try_at", "stopped_at",
          "started_at", "ended_at", "paid_at", "card_saved_at", "delivered_at", "available_at"}  # fmt: skip


def when(value: str | None) -> datetime | None:
    """A UTCDateTime column as SQLite holds it (naive UTC text), as an aware datetime."""
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _typed(columns: list[str], row: tuple[Any, ...]) -> dict[str, Any]:
    out = dict(zip(columns, row, strict=True))
    for name in columns:
        value = out[name]
        if name in _TIMES:
            out[name] = when(value)
        elif name in _BOOLEAN:
            out[name] = bool(value)
        elif name == "cycle_start" and value is not None:
            out[name] = date.fromisoformat(value)
    return out


@dataclass(frozen=True)
class EntryRow:
    id: int
    account_id: int
    agent_id: int | None
    kind: str
    key: str | None
    unit: str | None
    quantity: int | None
    amount: int
    refused: str | None
    refund_of: int | None
    call_id: str | None
    memo: str | None
    at: datetime
    moves: tuple[tuple[str, str, int], ...]

    def moved(self, debit: str | None = None, credit: str | None = None) -> int:
        """What the entry moved out of `debit` into `credit` (either may be any book)."""
        return sum(a for d, c, a in self.moves if debit in (None, d) and credit in (None, c))


@dataclass(frozen=True)
class OutboxRow:
    id: int
    account_id: int | None
    kind: str
    payload: dict[str, Any]


@dataclass
class Look:
    entries: list[EntryRow] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)
    accounts: dict[int, dict[str, Any]] = field(default_factory=dict)
    agents: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: Recharge attempts new or changed since the last look.
    recharges: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: Alert messages delivered since the step began.
    delivered: set[int] = field(default_factory=set)


class Reader:
    """Plain reads of the simulation's database file."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def close(self) -> None:
        self.db.close()

    def _rows(self, sql: str, *args: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
        cursor = self.db.execute(sql, args)
        return [d[0] for d in cursor.description], cursor.fetchall()

    def table(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        columns, rows = self._rows(sql, *args)
        return [_typed(columns, row) for row in rows]

    def look(
        self, after_entry: int, after_message: int, after_recharge: int, since: datetime
    ) -> Look:
        """What was committed since those ids (and, for what moves, since `since`)."""
        stamp = since.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
        found = Look()
        self.db.execute("BEGIN")
        try:
            moves: dict[int, list[tuple[str, str, int]]] = {}
            for entry_id, debit, credit, amount in self.db.execute(
                "SELECT entry_id, debit_book, credit_book, amount FROM transfers "
                "WHERE entry_id > ? ORDER BY id", (after_entry,)
            ):  # fmt: skip
                moves.setdefault(entry_id, []).append((debit, credit, amount))
            for row in self.db.execute(
                "SELECT id, account_id, agent_id, kind, idempotency_key, unit, quantity, amount, "
                "refused_reason, refund_of, call_id, memo, created_at FROM entries WHERE id > ? ORDER BY id",
                (after_entry,),
            ):  # fmt: skip
                found.entries.append(
                    EntryRow(*row[:-1], when(row[-1]), tuple(moves.get(row[0], ())))
                )  # type: ignore[arg-type]
            found.outbox = [
                OutboxRow(i, a, k, json.loads(p) if p else {})
                for i, a, k, p in self.db.execute(
                    "SELECT id, account_id, kind, payload FROM outbox WHERE id > ? ORDER BY id",
                    (after_message,),
                )
            ]
            found.accounts = {r["id"]: r for r in self.table("SELECT * FROM accounts")}
            found.agents = {r["id"]: r for r in self.table("SELECT * FROM agents")}
            found.recharges = {
                r["id"]: r
                for r in self.table(
                    "SELECT * FROM recharges WHERE id > ? OR status = 'pending' OR finished_at >= ?",
                    after_recharge, stamp,
                )
            }  # fmt: skip
            found.delivered = {
                i for (i,) in self.db.execute(
                    "SELECT id FROM outbox WHERE delivered_at >= ? AND kind LIKE 'alert.%'", (stamp,)
                )
            }  # fmt: skip
        finally:
            self.db.execute("COMMIT")
        return found

    def first_due(self) -> tuple[datetime | None, datetime | None, datetime | None]:
        """When the first recharge request, the first alert and the first webhook delivery
        fall due. An endpoint's deliveries wait behind its first undelivered one (its
        order), so each endpoint is due when that one is."""
        row = self.db.execute(
            "SELECT (SELECT min(available_at) FROM outbox WHERE delivered_at IS NULL "
            "AND kind LIKE 'recharge.requested%'), (SELECT min(available_at) FROM outbox "
            "WHERE delivered_at IS NULL AND kind LIKE 'alert.%')"
        ).fetchone()
        heads = self.db.execute(  # SQLite: a bare column comes from the row min() picked
            "SELECT available_at, min(id) FROM outbox_deliveries WHERE delivered_at IS NULL "
            "AND endpoint_id IS NOT NULL GROUP BY endpoint_id"
        ).fetchall()
        webhook = min((when(at) for at, _ in heads), default=None)
        return when(row[0]), when(row[1]), webhook

    def last_message(self) -> int:
        return int(self.db.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()[0])

    def webhook_deliveries(self, since: datetime) -> list[tuple[int, int, str]]:
        """(endpoint, message, event type) of the webhook deliveries marked delivered since."""
        stamp = since.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
        return self.db.execute(
            "SELECT endpoint_id, message_id, event_type FROM outbox_deliveries "
            "WHERE delivered_at >= ? AND endpoint_id IS NOT NULL ORDER BY id", (stamp,)
        ).fetchall()  # fmt: skip

    def undelivered_webhooks(self) -> list[tuple[int, int, str]]:
        return self.db.execute(
            "SELECT endpoint_id, message_id, event_type FROM outbox_deliveries "
            "WHERE delivered_at IS NULL AND endpoint_id IS NOT NULL ORDER BY id"
        ).fetchall()

    def topups(self) -> list[dict[str, Any]]:
        return self.table("SELECT * FROM topups")

    def call(self, call_id: str) -> dict[str, Any]:
        return self.table("SELECT * FROM calls WHERE id = ?", call_id)[0]
