"""Delivering the ledger's alert outbox to each account's Slack alert channel.

Each round claims the due `alert.*` messages with a short lease (so no database lock is
held while Slack answers, and another replica does not post them too), posts them in
order, and marks each delivered right after Slack accepts it. A failure (Slack down, 500,
429, a channel the bot cannot post in) marks the message failed with a backoff, or Slack's
Retry-After, and defers the account's later messages to keep them in order: nothing is
lost, and a delivered message is never offered again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot import metrics
from bot.context import AppContext
from bot.slack import blocks
from bot.slack.clients import client_for_team, why_no_client
from bot.slack.home import refresh_home_tabs
from ledger import outbox
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.models import Account
from ledger.slack_workspaces import claim_due_alerts, defer
from ledger.tracing import request_scope

log = logging.getLogger(__name__)

#: How long a claimed message is reserved for this deliverer.
LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class _Due:
    id: int
    account_id: int | None
    kind: str
    payload: dict[str, Any]
    attempts: int
    team_id: str | None
    channel: str | None
    account_name: str
    currency: str
    timezone: str
    next_renewal_at: datetime | None
    request_id: str | None = None


def _claim(context: AppContext, now: datetime) -> list[_Due]:
    default_channel = context.settings.slack_alert_channel or None

    def work(session: Session) -> list[_Due]:
        due = []
        for m in claim_due_alerts(session, now=now, lease=LEASE):
            account = session.get(Account, m.account_id) if m.account_id else None
            due.append(
                _Due(
                    id=m.id,
                    account_id=m.account_id,
                    kind=m.kind,
                    payload=dict(m.payload or {}),
                    attempts=m.attempts,
                    team_id=account.slack_team_id if account else None,
                    channel=(account.alert_channel_id if account else None) or default_channel,
                    account_name=account.name if account else "creditbot",
                    currency=account.currency if account else "USD",
                    timezone=account.timezone if account else "UTC",
                    next_renewal_at=account.next_renewal_at if account else None,
                    request_id=m.request_id,
                )
            )
        return due

    return transaction(context.sessions, work)


def _retry_after(exc: Exception) -> timedelta | None:
    if isinstance(exc, SlackApiError) and exc.response.status_code == 429:
        headers = exc.response.headers or {}
        for key, value in headers.items():
            if key.lower() == "retry-after":
                raw = value[0] if isinstance(value, list) else value
                try:
                    return timedelta(seconds=max(1, int(raw)))
                except (TypeError, ValueError):
                    break
        return timedelta(seconds=30)
    return None


def _describe(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return f"slack {exc.response.status_code}: {exc.response.get('error') or exc}"
    return f"{type(exc).__name__}: {exc}"


def _fail(context: AppContext, message: _Due, rest: list[_Due], error: str, now: datetime,
          retry_after: timedelta | None = None) -> None:  # fmt: skip
    """Record the failed attempt, and hold the account's later messages until it retries."""
    wait = retry_after if retry_after is not None else outbox.backoff(message.attempts + 1)
    metrics.DELIVERIES.labels("slack", "failed").inc()

    def work(session: Session) -> None:
        outbox.mark_failed(session, message.id, error, now=now, retry_after=wait)
        defer(session, [m.id for m in rest], now + wait)

    transaction(context.sessions, work)


def deliver_due_alerts(context: AppContext, *, now: datetime | None = None) -> int:
    """Post every due `alert.*` outbox message; returns how many were delivered.

    Failed posts stay in the outbox with a backoff (ledger.outbox.mark_failed). Open App
    Home tabs whose balances changed are refreshed afterwards (at most every few seconds).
    """
    now = now or utcnow()
    due = _claim(context, now)
    by_account: dict[int | None, list[_Due]] = {}
    for message in due:
        by_account.setdefault(message.account_id, []).append(message)
    delivered = 0
    # Stop well inside the lease, so no other deliverer can claim a message this round
    # still means to post; what is left becomes due again at once.
    deadline = time.monotonic() + LEASE.total_seconds() / 2
    for messages in by_account.values():
        client: WebClient | None = None
        for index, message in enumerate(messages):
            rest = messages[index + 1 :]
            if time.monotonic() > deadline:
                left = [m.id for m in messages[index:]]
                transaction(context.sessions, lambda s, ids=left: defer(s, ids, now))
                break
            if index == 0:
                client = client_for_team(context, message.team_id)
            if client is None:
                _fail(context, message, rest, why_no_client(context, message.team_id), now)
                break
            if not message.channel:
                _fail(context, message, rest, "no alert channel: pick one in the App Home tab", now)
                break
            rendered = blocks.alert_message(
                message.kind,
                message.payload,
                account_name=message.account_name,
                currency=message.currency,
                timezone=message.timezone,
                next_renewal_at=message.next_renewal_at,
            )
            try:
                client.chat_postMessage(
                    channel=message.channel,
                    text=rendered["text"],
                    blocks=rendered["blocks"],
                    unfurl_links=False,
                    unfurl_media=False,
                )
            except Exception as exc:  # noqa: BLE001 - any failure leaves it in the outbox
                with request_scope(message.request_id):  # the line names who wrote it
                    log.warning("alert %s not delivered: %s", message.id, _describe(exc))
                _fail(context, message, rest, _describe(exc), now, _retry_after(exc))
                break
            metrics.DELIVERIES.labels("slack", "delivered").inc()
            transaction(
                context.sessions, lambda s, i=message.id: outbox.mark_delivered(s, i, now=now)
            )
            delivered += 1
    try:
        refresh_home_tabs(context, now=now)
    except Exception:  # noqa: BLE001 - a Home refresh never blocks alert delivery
        log.exception("refreshing App Home tabs failed")
    return delivered
