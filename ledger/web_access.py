"""Who is looking at an account's billing page: single-use sign-in links handed out in
Slack, the browser sessions they open, and the server's secret for signed links.

A link is bound to one Slack user and one account and works once, for a few minutes. The
session it opens lives a few hours and carries what its user may do (billing admins may
change settings, everyone else only reads, rule 11) and the CSRF token of its forms. Only
hashes of tokens are stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.cycles import utcnow
from ledger.errors import LedgerError
from ledger.models.web import ServerSecret, SignInLink, WebSession
from ledger.secrets_at_rest import LINK_KEYS, SecretCipher, reveal

#: How long a sign-in link works, and a session lasts.
LINK_TTL = timedelta(minutes=10)
SESSION_TTL = timedelta(hours=8)
#: What the server's own secret is called in messages.
LINK_KEY = LINK_KEYS[0].what


class SignInRefused(LedgerError):
    """A sign-in link that is unknown, used, expired, or for another account."""

    code = "sign_in_refused"


@dataclass(frozen=True)
class SignedIn:
    """A browser's session: whose, for which account, what it may do, its CSRF token."""

    account_id: int
    slack_user_id: str
    can_edit: bool
    csrf_token: str
    expires_at: datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_sign_in_link(
    session: Session,
    account_id: int,
    slack_user_id: str,
    *,
    can_edit: bool,
    now: datetime | None = None,
) -> str:
    """A new single-use token for `slack_user_id` to sign in to the account's page."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(
        SignInLink(
            token_hash=_hash(token),
            account_id=account_id,
            slack_user_id=slack_user_id,
            can_edit=can_edit,
            created_at=now,
            expires_at=now + LINK_TTL,
        )
    )
    # Expired links and sessions go as new ones come: the tables stay small.
    session.execute(delete(SignInLink).where(SignInLink.expires_at < now - LINK_TTL))
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    session.flush()
    return token


def redeem_sign_in_link(
    session: Session, account_id: int, token: str, *, now: datetime | None = None
) -> tuple[str, SignedIn]:
    """Use the link once: the new session's token (for the cookie) and the session.

    Refused (SignInRefused, nothing changed) when the link is unknown, was used, expired,
    or names another account than the page it was opened for.
    """
    now = now or utcnow()
    link = session.execute(
        select(SignInLink).where(SignInLink.token_hash == _hash(token)).with_for_update()
    ).scalar_one_or_none()
    if link is None:
        raise SignInRefused("This sign-in link is not valid. Ask for a new one in Slack.")
    if link.account_id != account_id:
        raise SignInRefused("This sign-in link is for another account.")
    if link.used_at is not None:
        raise SignInRefused("This sign-in link was already used. Ask for a new one in Slack.")
    if link.expires_at <= now:
        raise SignInRefused("This sign-in link has expired. Ask for a new one in Slack.")
    link.used_at = now
    session_token = secrets.token_urlsafe(32)
    signed_in = SignedIn(
        account_id, link.slack_user_id, link.can_edit, secrets.token_urlsafe(24), now + SESSION_TTL
    )
    session.add(
        WebSession(
            token_hash=_hash(session_token),
            account_id=account_id,
            slack_user_id=link.slack_user_id,
            can_edit=link.can_edit,
            csrf_token=signed_in.csrf_token,
            created_at=now,
            expires_at=signed_in.expires_at,
        )
    )
    session.flush()
    return session_token, signed_in


def signed_in(session: Session, token: str, *, now: datetime | None = None) -> SignedIn | None:
    """The live session of a cookie's token, or None."""
    now = now or utcnow()
    found = session.get(WebSession, _hash(token))
    if found is None or found.expires_at <= now:
        return None
    return SignedIn(
        found.account_id, found.slack_user_id, found.can_edit, found.csrf_token, found.expires_at
    )


def csrf_ok(signed: SignedIn, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(signed.csrf_token, sent or "")


def sign_out(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == _hash(token)))


def server_secret(
    session: Session,
    name: str = "links",
    *,
    cipher: SecretCipher | None = None,
    now: datetime | None = None,
) -> str:
    """The server's own secret `name`, made once and kept in the database (so every
    replica signs alike): encrypted with `cipher` (CREDITBOT_ENCRYPTION_KEYS) when there
    is one, in plain text otherwise (`creditbot doctor` warns). Raises EncryptionKeyError
    when the stored one is encrypted and the keys do not open it."""
    found = session.get(ServerSecret, name)
    if found is not None:
        return reveal(found.value, cipher, LINK_KEY)
    value = secrets.token_hex(32)
    stored = cipher.encrypt(value) if cipher is not None else value
    try:
        with session.begin_nested():
            session.add(ServerSecret(name=name, value=stored, created_at=now or utcnow()))
    except IntegrityError:  # another replica made it first: use theirs
        found = session.get(ServerSecret, name, populate_existing=True)
        assert found is not None
        return reveal(found.value, cipher, LINK_KEY)
    return value
