"""One delivery round of a channel beyond Slack: claim the due rows (with a lease), send
each destination's in order, mark each delivered or failed. A failure holds the
destination's later rows behind it until its backoff ends, so nothing arrives out of order,
and never touches another destination's: an endpoint that is down delays only itself."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

from bot import metrics
from bot.context import AppContext
from ledger import deliveries
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.deliveries import Channel, Due
from ledger.tracing import request_scope

log = logging.getLogger("creditbot.outbound")

#: How long claimed rows are reserved for this deliverer.
LEASE = timedelta(minutes=2)

#: Sends one delivery; raises (with a message worth keeping as its last error) when it failed.
Send = Callable[[Due], None]


class DeliveryFailed(Exception):
    """The destination did not take the delivery (its words are the message)."""


def deliver_due(
    context: AppContext,
    channel: Channel,
    sender: Callable[[], AbstractContextManager[Send]],
    *,
    now: datetime | None = None,
) -> int:
    """Deliver every due row of `channel`; returns how many were delivered. `sender()`
    opens what sends them (an SMTP connection, say) for the round."""
    now = now or utcnow()
    due = transaction(
        context.sessions, lambda s: deliveries.claim_due(s, channel, now=now, lease=LEASE)
    )
    if not due:
        return 0
    by_destination: dict[int, list[Due]] = {}
    for row in due:
        by_destination.setdefault(row.destination_id, []).append(row)
    delivered = 0
    # Stop well inside the lease: what is left becomes due again at once.
    deadline = time.monotonic() + LEASE.total_seconds() / 2
    with sender() as send:
        for rows in by_destination.values():
            for index, row in enumerate(rows):
                if time.monotonic() > deadline:
                    left = [r.id for r in rows[index:]]
                    transaction(context.sessions, lambda s, ids=left: deliveries.defer(s, ids, now))
                    break
                # Log lines of this delivery carry the id of the request that wrote the alert.
                with request_scope(row.request_id):
                    error = _send(send, row)
                    if error is not None:
                        held = [r.id for r in rows[index + 1 :]]
                        again = transaction(
                            context.sessions,
                            lambda s, r=row, e=error, h=held: deliveries.mark_failed(
                                s, r, e, h, now=now
                            ),
                        )
                        metrics.DELIVERIES.labels(channel, "failed").inc()
                        log.warning(
                            "%s %s of alert %s to %s failed (attempt %d, next at %s): %s",
                            channel, row.event_type, row.message_id, _where(row),
                            row.attempts + 1, again.isoformat(), error,
                        )  # fmt: skip
                        break
                    transaction(
                        context.sessions,
                        lambda s, i=row.id: deliveries.mark_delivered(s, i, now=now),
                    )
                    metrics.DELIVERIES.labels(channel, "delivered").inc()
                    log.info("%s %s of alert %s delivered to %s", channel, row.event_type,
                             row.message_id, _where(row))  # fmt: skip
                    delivered += 1
    return delivered


def _send(send: Send, row: Due) -> str | None:
    """None when delivered, else why not."""
    try:
        send(row)
    except DeliveryFailed as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure leaves it for a retry
        return f"{type(exc).__name__}: {exc}"
    return None


def _where(row: Due) -> str:
    return row.url or row.address or f"destination {row.destination_id}"
