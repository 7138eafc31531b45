"""Every table of creditbot. Importing this module registers them all on `Base.metadata`."""

from ledger.models import (  # noqa: F401  (register tables)
    api,
    audit,
    destinations,
    payments,
    scheduler,
    slack,
    usage,
    web,
)
from ledger.models.base import Base, UTCDateTime
from ledger.models.core import (
    BEHAVIOURS,
    BOOKS,
    STOP_REASONS,
    Account,
    Agent,
    Call,
    Entry,
    OutboxMessage,
    Transfer,
)
from ledger.models.usage import UsageDay

__all__ = [
    "BEHAVIOURS",
    "BOOKS",
    "STOP_REASONS",
    "Account",
    "Agent",
    "Base",
    "Call",
    "Entry",
    "OutboxMessage",
    "Transfer",
    "UTCDateTime",
    "UsageDay",
]
