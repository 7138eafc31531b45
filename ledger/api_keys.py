"""API keys of agent runtimes: one account each, a secret shown once and stored hashed.

A key is `cb_` followed by 43 URL-safe random characters (256 bits). Its scope says what
it may do: `runtime` (what agent runtimes need: charges, calls, the balance, agents) or
`admin` (also the account's settings, budget, alert levels, top-ups and audit trail). The database keeps
its SHA-256 and its first characters (the prefix), never the secret itself; a lookup by
hash needs no constant-time comparison, since an attacker cannot choose hashes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ledger import audit
from ledger.audit import Actor
from ledger.cycles import utcnow
from ledger.errors import InvalidInput, NotFound
from ledger.models import Account
from ledger.models.api import ApiKey
from ledger.names import check_text

SCHEME = "cb_"
SCOPES = ("runtime", "admin")
PREFIX_LENGTH = 11  # "cb_" and 8 random characters: enough to tell keys apart
#: Longest token we bother hashing: anything longer is not one of ours.
MAX_SECRET_LENGTH = 200


class UnknownApiKey(NotFound):
    code = "unknown_api_key"


@dataclass(frozen=True)
class ApiKeyView:
    id: int
    account_id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    scope: str = "runtime"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class NewApiKey:
    """A key just created. `secret` is shown once and cannot be read again."""

    key: ApiKeyView
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _view(key: ApiKey) -> ApiKeyView:
    return ApiKeyView(
        key.id, key.account_id, key.name, key.prefix, key.created_at, key.revoked_at, key.scope
    )


def create_key(
    session: Session,
    account_id: int,
    name: str = "",
    *,
    scope: str = "runtime",
    actor: Actor | None = None,
    now: datetime | None = None,
) -> NewApiKey:
    """A new key for the account. Keep the returned secret: only its hash is stored."""
    name = check_text(name or "", what="An API key's name", max_length=100, required=False)
    name = name or "default"
    if scope not in SCOPES:
        raise InvalidInput(f"{scope!r} is not a scope: choose 'runtime' or 'admin'.")
    now = now or utcnow()
    if session.get(Account, account_id) is None:
        raise NotFound(f"No account {account_id}.")
    secret = SCHEME + secrets.token_urlsafe(32)
    key = ApiKey(
        account_id=account_id,
        name=name,
        prefix=secret[:PREFIX_LENGTH],
        secret_hash=hash_secret(secret),
        scope=scope,
        created_at=now,
    )
    session.add(key)
    session.flush()
    audit.record(
        session, account_id, actor, "api_key.created", {},
        {"name": name, "prefix": key.prefix, "scope": scope}, subject=key.id, now=now,
        always=True,
    )  # fmt: skip
    return NewApiKey(_view(key), secret)


def list_keys(session: Session, account_id: int) -> list[ApiKeyView]:
    """Every key of the account, revoked ones included, oldest first."""
    keys = session.execute(
        select(ApiKey).where(ApiKey.account_id == account_id).order_by(ApiKey.id)
    ).scalars()
    return [_view(k) for k in keys]


def revoke_key(
    session: Session,
    account_id: int,
    ref: int | str,
    *,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> ApiKeyView:
    """Revoke the account's key by id or prefix. Revoking twice keeps the first time."""
    stmt = select(ApiKey).where(ApiKey.account_id == account_id)
    text = str(ref).strip()
    if isinstance(ref, int) or text.isdigit():
        stmt = stmt.where(ApiKey.id == int(text))
    else:
        if len(text) < PREFIX_LENGTH:
            raise InvalidInput(f"Give a key id or its full prefix ({PREFIX_LENGTH} characters).")
        stmt = stmt.where(ApiKey.prefix == text[:PREFIX_LENGTH])
    found = session.execute(stmt).scalars().all()
    if len(found) != 1:
        raise UnknownApiKey(
            f"No API key {text!r} in this account."
            if not found
            else f"{text!r} matches several keys: use the id."
        )
    key = found[0]
    if key.revoked_at is None:
        key.revoked_at = now or utcnow()
        session.flush()
        audit.record(
            session, account_id, actor, "api_key.revoked", {"prefix": key.prefix},
            {"prefix": key.prefix, "revoked": True}, subject=key.id, now=key.revoked_at,
        )  # fmt: skip
    return _view(key)


#: Every API request runs this, so it is plain SQL: building the equivalent ORM select
#: costs more than running it.
_AUTHENTICATE = text(
    "SELECT account_id, prefix, scope FROM api_keys"
    " WHERE secret_hash = :secret_hash AND revoked_at IS NULL"
)


def well_formed(secret: str | None) -> bool:
    """Whether `secret` could be one of our keys at all (checked without the database)."""
    return bool(secret) and secret.startswith(SCHEME) and len(secret) <= MAX_SECRET_LENGTH  # type: ignore[union-attr]


def authenticate(session: Session, secret: str | None) -> int | None:
    """The account id a presented secret belongs to, or None (unknown, revoked, malformed)."""
    holder = key_holder(session, secret)
    return None if holder is None else holder.account_id


class KeyHolder(NamedTuple):
    """Who presented a key: its account, its prefix (who the audit trail names), its scope."""

    account_id: int
    prefix: str
    scope: str

    @property
    def actor(self) -> Actor:
        return Actor.api_key(self.prefix)


def key_holder(session: Session, secret: str | None) -> KeyHolder | None:
    """The key a presented secret is, or None (unknown, revoked, malformed)."""
    if not well_formed(secret):
        return None
    assert secret is not None
    row = session.execute(_AUTHENTICATE, {"secret_hash": hash_secret(secret)}).one_or_none()
    return None if row is None else KeyHolder(*row)
