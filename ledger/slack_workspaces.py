"""What the Slack app keeps in the ledger's database: which workspace belongs to which
account, who looks at the App Home tab, claiming alert messages for delivery, and which
workspaces uninstalled the app.

Plain functions over a session, like the rest of the ledger; nothing here talks to Slack.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from ledger import outbox
from ledger.accounts import (
    AccountSettings,
    account_for_team,
    check_team_id,
    create_account,
    get_account,
)
from ledger.cycles import utcnow
from ledger.errors import InvalidInput
from ledger.models import Account, OutboxMessage
from ledger.models.slack import SlackHomeView, SlackUninstall
from ledger.names import without_refused

_outbox = OutboxMessage.__table__


def link_team(session: Session, account_ref: int | str, team_id: str) -> Account:
    """Link Slack workspace `team_id` to an existing account (replacing its old link)."""
    team_id = check_team_id(team_id)
    account = get_account(session, account_ref)
    other = account_for_team(session, team_id)
    if other is not None and other.id != account.id:
        raise InvalidInput(
            f"Slack team {team_id} is already linked to account {other.id} ({other.name}); "
            "unlink it first."
        )
    account.slack_team_id = team_id
    session.flush()
    return account


def unlink_team(session: Session, account_ref: int | str) -> Account:
    """Forget the account's Slack workspace (its alerts wait until it is linked again)."""
    account = get_account(session, account_ref)
    account.slack_team_id = None
    session.flush()
    return account


def account_for_install(
    session: Session, team_id: str, team_name: str | None, *, now: datetime | None = None
) -> tuple[Account, bool]:
    """The account of a workspace that just installed the app; a new workspace gets its
    own account (no plan credits until an operator sets them). Returns (account, created)."""
    account = account_for_team(session, team_id)
    if account is not None:
        return account, False
    # Slack's name for the workspace, less anything an account name may not hold.
    name = without_refused(team_name or "").strip()[:200] or f"Slack {team_id}"
    account = create_account(session, AccountSettings(name=name, slack_team_id=team_id), now=now)
    return account, True


# -- alerts -------------------------------------------------------------------------------


def claim_due_alerts(
    session: Session,
    *,
    now: datetime | None = None,
    lease: timedelta = timedelta(minutes=2),
    limit: int = 50,
) -> list[OutboxMessage]:
    """Due `alert.*` messages, leased to this deliverer: they are not offered again for
    `lease`, so the caller can post them to Slack outside any database transaction (no lock
    held while Slack is slow) and another replica does not post them too. A deliverer that
    dies mid-way lets the lease run out and the messages come back (`outbox.claim_due`,
    with the account ordering below)."""
    now = now or utcnow()
    messages = outbox.take_due(session, kind_prefix=outbox.ALERT_PREFIX, now=now, limit=limit)
    accounts = {m.account_id for m in messages if m.account_id}
    held = _held_back_from(session, accounts, now, now + lease)
    messages = [m for m in messages if m.id < held.get(m.account_id, m.id + 1)]
    if messages:
        outbox.defer(session, [m.id for m in messages], now + lease)
    return messages


def _held_back_from(
    session: Session, account_ids: set[int], now: datetime, leased_now: datetime
) -> dict[int, int]:
    """Per account, the oldest alert still waiting: for its retry after a failure, or for
    a deliverer that claimed it in an earlier round (and may have died posting it). The
    account's later alerts wait behind it, so a channel gets its alerts in the order they
    happened (an alert written while an earlier one waits out Slack's outage would
    otherwise go first). Alerts leased at this very instant (deliverers sharing a round)
    hold nothing back."""
    if not account_ids:
        return {}
    rows = session.execute(
        select(_outbox.c.account_id, func.min(_outbox.c.id))
        .where(
            _outbox.c.account_id.in_(account_ids),
            _outbox.c.delivered_at.is_(None),
            _outbox.c.kind.startswith(outbox.ALERT_PREFIX),
            or_(_outbox.c.attempts > 0, _outbox.c.available_at < leased_now),
            _outbox.c.available_at > now,
        )
        .group_by(_outbox.c.account_id)
    )
    return {account_id: first for account_id, first in rows}


#: Offer undelivered messages again later (kept here for the Slack deliverer's imports).
defer = outbox.defer


def is_delivered(session: Session, message_id: int) -> bool:
    return (
        session.execute(
            select(_outbox.c.delivered_at).where(_outbox.c.id == message_id)
        ).scalar_one_or_none()
        is not None
    )


def release_alerts(session: Session, account_id: int, *, now: datetime | None = None) -> int:
    """Make the account's waiting alerts due now (its alert channel was just set)."""
    now = now or utcnow()
    result = session.execute(
        update(_outbox)
        .where(
            _outbox.c.account_id == account_id,
            _outbox.c.delivered_at.is_(None),
            _outbox.c.kind.startswith(outbox.ALERT_PREFIX),
            _outbox.c.available_at > now,
        )
        .values(available_at=now)
    )
    return result.rowcount or 0


# -- App Home -----------------------------------------------------------------------------


def home_view(session: Session, team_id: str, user_id: str) -> SlackHomeView | None:
    return session.get(SlackHomeView, (team_id, user_id))


def record_home_published(
    session: Session,
    team_id: str,
    user_id: str,
    account_id: int,
    fingerprint: str,
    *,
    opened: bool = False,
    now: datetime | None = None,
) -> None:
    """Remember what the user's Home tab shows now."""
    now = now or utcnow()
    row = session.get(SlackHomeView, (team_id, user_id))
    if row is None:
        row = SlackHomeView(team_id=team_id, user_id=user_id, opened_at=now)
        session.add(row)
    row.account_id = account_id
    row.fingerprint = fingerprint
    row.published_at = now
    if opened:
        row.opened_at = now
    session.flush()


def home_views(
    session: Session, *, opened_since: datetime | None = None, account_id: int | None = None
) -> list[SlackHomeView]:
    """The Home tabs worth keeping fresh: opened since `opened_since`."""
    stmt = select(SlackHomeView).order_by(SlackHomeView.team_id, SlackHomeView.user_id)
    if opened_since is not None:
        stmt = stmt.where(SlackHomeView.opened_at >= opened_since)
    if account_id is not None:
        stmt = stmt.where(SlackHomeView.account_id == account_id)
    return list(session.execute(stmt).scalars())


# -- uninstalls ---------------------------------------------------------------------------

#: The Slack events after which creditbot may no longer post to a workspace.
UNINSTALL_EVENTS = ("app_uninstalled", "tokens_revoked")


def record_uninstall(
    session: Session,
    team_id: str,
    event: str,
    *,
    token_digest: str | None = None,
    now: datetime | None = None,
) -> SlackUninstall:
    """Remember that workspace `team_id` took creditbot's access away (the latest event)."""
    if event not in UNINSTALL_EVENTS:
        raise InvalidInput(f"{event!r} is not one of {', '.join(UNINSTALL_EVENTS)}")
    row = session.get(SlackUninstall, team_id)
    if row is None:
        row = SlackUninstall(team_id=team_id)
        session.add(row)
    row.event = event
    row.at = now or utcnow()
    row.token_digest = token_digest
    session.flush()
    return row


def forget_uninstall(session: Session, team_id: str) -> bool:
    """The workspace installed the app again; True if it had been uninstalled."""
    row = session.get(SlackUninstall, team_id)
    if row is not None:
        session.delete(row)
        session.flush()
    return row is not None


def uninstalls(session: Session) -> list[SlackUninstall]:
    """Every workspace that uninstalled the app or revoked its token, latest first."""
    return list(
        session.execute(select(SlackUninstall).order_by(SlackUninstall.at.desc())).scalars()
    )


def silencing_uninstall(
    session: Session, *, team_id: str | None, token_digest: str | None
) -> SlackUninstall | None:
    """The uninstall that keeps creditbot from posting: with one bot token
    (`token_digest`), one recorded while that same token was in force; with OAuth
    installs, the workspace's own."""
    if token_digest is not None:
        return session.execute(
            select(SlackUninstall).where(SlackUninstall.token_digest == token_digest).limit(1)
        ).scalar_one_or_none()
    return session.get(SlackUninstall, team_id) if team_id else None
