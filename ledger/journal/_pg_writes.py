"""PostgreSQL: what a writer's batch writes at its end, in one pipeline with its COMMIT.

The batch (ledger/journal/batch.py) holds its charges' entries and the rows they moved;
this sends them: the entries and their transfers in one statement (`_sql.LATER_ENTRIES`),
then one statement per kind of moved row over all its rows, then -- at the batch's end,
unless a read handed over must be checked first -- the COMMIT: one round trip for all
(ledger/journal/_driver.py says why the COMMIT goes there). A write that fails aborts the
pipeline, so its COMMIT never runs; once it has run, `_driver.COMMITTED` says so.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from ledger.journal import _sql
from ledger.journal._driver import COMMITTED, Check, begin_with, check_reads, send_reads

#: The unique constraint of an account's idempotency keys (ledger/models/core.py).
_KEY_CONSTRAINT = "uq_entries_account_key"


def write_out(
    conn: Connection,
    checks: list[Check],
    later: list[dict[str, Any]],
    answers: list[Any],
    moved: list[list[dict[str, Any]]],
    *,
    commit: bool,
) -> None:
    """Write the entries of `later` (each answer of `answers` then gets its entry's id) and
    the `moved` rows (balances, month spends, usage rollup rows: `_sql.ROWS`' keys), with
    the COMMIT when `commit` and no read handed over waits for its check."""
    for row in later:  # as the column's own type refuses one (ledger/models/base.py)
        if row["created_at"].tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
    raw = conn.connection.dbapi_connection
    cursor = raw.cursor()  # type: ignore[union-attr]
    balances, spends, usage = moved
    with raw.pipeline():  # type: ignore[union-attr]
        begin_with(conn, raw)
        sent = send_reads(raw, checks)
        if later:
            entries = raw.cursor()  # type: ignore[union-attr]
            entries.execute(_sql.LATER_ENTRIES, [_sql.as_json(later)])
        # The updates are planned each time, for the rows' number (`_sql._recordset`).
        if balances:
            cursor.execute(_sql.SET_BALANCES_JSON, [_sql.as_json(balances), len(balances)],
                           prepare=False)  # fmt: skip
        if spends:
            cursor.execute(_sql.SPEND_JSON, [_sql.as_json(spends), len(spends)], prepare=False)
        if usage:
            cursor.execute(_sql.UPSERT_JSON, [_sql.as_json(usage)])
        commit = commit and not sent
        if commit:
            cursor.execute("COMMIT")
    if commit:
        conn.info[COMMITTED] = True
    cursor.close()
    check_reads(sent)
    if later:
        _answer(entries, answers)


def key_raced(exc: BaseException) -> bool:
    """`exc` says an entry's idempotency key was found taken."""
    return getattr(getattr(exc, "diag", None), "constraint_name", None) == _KEY_CONSTRAINT


def _answer(cursor: Any, answers: list[Any]) -> None:
    """Give each answer waiting for it the id of its entry, in order (`LATER_ENTRIES`
    writes every entry or fails, and returns their ids in its rows' order)."""
    rows = cursor.fetchall()
    cursor.close()
    for answer, (entry_id,) in zip(answers, rows, strict=True):
        if answer is not None:
            # Frozen for its readers; nobody has seen it yet: nobody has been answered.
            object.__setattr__(answer, "entry_id", entry_id)
