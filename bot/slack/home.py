"""The App Home tab: published when a person opens it, and re-published when what it
shows changes (balances, agents, settings), at most once every few seconds per person."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot.context import AppContext
from bot.slack import blocks
from bot.slack.clients import client_for_team
from bot.slack.dashboard_data import load_dashboard
from ledger.accounts import account_for_team
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.slack_workspaces import home_views, record_home_published

log = logging.getLogger(__name__)

#: At most one balance-driven refresh of a person's Home tab in this many seconds.
REFRESH_INTERVAL = timedelta(seconds=5)
#: Home tabs not opened for this long are no longer kept fresh.
KEEP_FRESH_FOR = timedelta(days=30)


def fingerprint(view: dict) -> str:
    return hashlib.sha256(json.dumps(view, sort_keys=True).encode()).hexdigest()


def publish_home(
    context: AppContext,
    client: WebClient,
    team_id: str,
    user_id: str,
    *,
    notice: str | None = None,
    opened: bool = False,
    now: datetime | None = None,
) -> dict:
    """Publish the person's Home tab now; returns the view."""
    now = now or utcnow()
    account_id = transaction(
        context.sessions,
        lambda s: getattr(account_for_team(s, team_id), "id", None),
    )
    if account_id is None:
        message = blocks.not_linked_message(team_id)
        view = {"type": "home", "blocks": message["blocks"]}
        client.views_publish(user_id=user_id, view=view)
        return view
    dashboard = load_dashboard(context, account_id, now=now)
    view = blocks.home_view(dashboard, notice=notice)
    client.views_publish(user_id=user_id, view=view)
    # What the tab shows without the one-off notice: a refresh only follows real changes.
    digest = fingerprint(blocks.home_view(dashboard))

    def record(session: Session) -> None:
        record_home_published(session, team_id, user_id, account_id, digest, opened=opened, now=now)

    transaction(context.sessions, record)
    return view


def refresh_home_tabs(
    context: AppContext,
    *,
    now: datetime | None = None,
    account_id: int | None = None,
    min_interval: timedelta = REFRESH_INTERVAL,
) -> int:
    """Re-publish the Home tabs whose content changed since they were last published and
    that were not published in the last `min_interval`. Returns how many were published."""
    now = now or utcnow()
    rows = transaction(
        context.sessions,
        lambda s: [
            (r.team_id, r.user_id, r.account_id, r.fingerprint, r.published_at)
            for r in home_views(s, opened_since=now - KEEP_FRESH_FOR, account_id=account_id)
        ],
    )
    published = 0
    clients: dict[str, WebClient | None] = {}
    views: dict[int, tuple[dict, str]] = {}  # one read per account, however many viewers
    for team_id, user_id, acct, digest, published_at in rows:
        if now - published_at < min_interval:
            continue
        if acct not in views:
            view = blocks.home_view(load_dashboard(context, acct, now=now))
            views[acct] = (view, fingerprint(view))
        view, new_digest = views[acct]
        if new_digest == digest:
            continue
        if team_id not in clients:
            clients[team_id] = client_for_team(context, team_id)
        client = clients[team_id]
        if client is None:
            continue
        try:
            client.views_publish(user_id=user_id, view=view)
        except (SlackApiError, OSError) as exc:
            log.warning("could not refresh the Home tab of %s: %s", user_id, exc)
            continue

        def record(session: Session, team_id: str = team_id, user_id: str = user_id,
                   acct: int = acct, new_digest: str = new_digest) -> None:  # fmt: skip
            record_home_published(session, team_id, user_id, acct, new_digest, now=now)

        transaction(context.sessions, record)
        published += 1
    return published
