"""The journal: the only way money moves, and the reads that come before it.

Every balance change is one entry of balanced transfers posted through `post` (the gate,
ledger/journal/gate.py); the cached plan and wallet balances move with it and never go
below zero, and usage lands in the usage rollup with it. Writers lock the account first
(`lock_account`, or `read_for_charge` on the charge path), decide, then post. The prebuilt
statements that make the charge path fast (ledger/journal/_sql.py, run by
ledger/journal/_driver.py) are private to this package; `DriverStatement` itself is
shared with the usage reports, whose many rows cost the same bookkeeping.
"""

from ledger.agent_status import resume_agents
from ledger.journal._driver import DriverStatement, connection, driver_cursor
from ledger.journal._rollup import KINDS as USAGE_KINDS
from ledger.journal._rollup import UsageKey
from ledger.journal.batch import RunAlone, answer_later, read_later
from ledger.journal.gate import (
    CACHED,
    KeyTaken,
    Move,
    Overdraft,
    Posted,
    Posting,
    post,
    refresh_loaded,
)
from ledger.journal.reads import find_entry, lock_account, read_for_charge

__all__ = [
    "CACHED",
    "DriverStatement",
    "KeyTaken",
    "Move",
    "Overdraft",
    "Posted",
    "Posting",
    "RunAlone",
    "USAGE_KINDS",
    "UsageKey",
    "answer_later",
    "connection",
    "driver_cursor",
    "find_entry",
    "lock_account",
    "post",
    "read_for_charge",
    "read_later",
    "refresh_loaded",
    "resume_agents",
]
