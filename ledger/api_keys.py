"""API keys of agent runtimes: one account each, a secret shown once and stored hashed.

A key is `cb_` followed by 43 URL-safe random characters (256 bits). Its scope says what
it may do: `runtime` (what agent runtimes need: charges, calls, the balance, agents) or
`admin` (also the account's settings, budget, alert levels, top-ups and audit trail). The
database keeps its SHA-256 and its first characters (the prefix), never the secret itself;
a lookup by hash needs no constant-time comparison, since an attacker cannot choose hashes.

A server remembers the account and scope of each key it has seen (`KeyCache`), so a request costs
no query for its key; every transaction that trusts that memory first reads how many keys
were ever revoked (`api_key_revocations`, counted up by `revoke_key`), and forgets them
all when the count moved: a revocation in any process takes effect at once.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Concatenate, NamedTuple, ParamSpec, TypeVar

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from ledger import audit
from ledger.audit import Actor
from ledger.cycles import utcnow
from ledger.errors import InvalidInput, LedgerError, NotFound
from ledger.journal import RunAlone, connection, driver_cursor, read_later
from ledger.models import Account
from ledger.models.api import ApiKey, ApiKeyRevocations
from ledger.names import check_text

P = ParamSpec("P")
T = TypeVar("T")

SCHEME = "cb_"
SCOPES = ("runtime", "admin")
PREFIX_LENGTH = 11  # "cb_" and 8 random characters: enough to tell keys apart
#: Longest token we bother hashing: anything longer is not one of ours.
MAX_SECRET_LENGTH = 200


class UnknownApiKey(NotFound):
    code = "unknown_api_key"


class KeyRefused(LedgerError):
    """The presented key is missing, unknown or revoked: the request is not authenticated."""

    code = "unauthorized"


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
        session.execute(
            update(ApiKeyRevocations)
            .where(ApiKeyRevocations.id == 1)
            .values(count=ApiKeyRevocations.count + 1)
        )
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
    return _holder_of_hash(session, hash_secret(secret))


def _holder_of_hash(session: Session, secret_hash: str) -> KeyHolder | None:
    row = session.execute(_AUTHENTICATE, {"secret_hash": secret_hash}).one_or_none()
    return None if row is None else KeyHolder(*row)


_REVOCATIONS = "SELECT count FROM api_key_revocations WHERE id = 1"


class KeyCache:
    """Every key this process has seen (its account, prefix and scope), by the hash of its
    secret. A key's scope never changes, so it is kept with it.

    `cached` answers from memory alone (a hint: the key may have been revoked since);
    `holder_of` answers for a transaction, exactly: the first time in each transaction it
    reads the revocation count and forgets every key if the count moved, then looks up in
    the database only the keys it does not hold. Unknown and revoked keys are never kept.
    """

    def __init__(self) -> None:
        self._holders: dict[str, KeyHolder] = {}
        self._revocations: int | None = None

    def cached(self, secret_hash: str) -> KeyHolder | None:
        return self._holders.get(secret_hash)

    def holder_of(self, session: Session, secret_hash: str) -> KeyHolder | None:
        """The key, or None (unknown or revoked), as of this transaction.

        In a PostgreSQL writer's batch the revocation count is read with the batch's first
        pipeline (`journal.read_later`) rather than in a round trip of its own: keys are
        answered from memory meanwhile, and when the count turns out to have moved the
        batch rolls back and each request runs again alone, reading it first (nothing the
        batch did is seen by anybody before it commits)."""
        check = session.info.get(self)
        if check is None:
            check = session.info[self] = _Revocations(self)
            if not read_later(session, _REVOCATIONS, check.counted):
                # Straight to the driver: this runs in every batch, and SQLAlchemy's own
                # execution costs ten times the query.
                cursor = driver_cursor(connection(session), _REVOCATIONS)
                check.counted(cursor.fetchone())
                cursor.close()
        basis = self._revocations  # what memory holds is good as of this count (or later)
        holder = self._holders.get(secret_hash)
        if holder is None:
            holder = _holder_of_hash(session, secret_hash)
            if holder is not None:
                self._holders[secret_hash] = holder
        elif not check.read:
            check.trusted.add(basis)
        return holder

    def _counted(self, count: int | None) -> None:
        """Forget every key when the revocation count moved (or is not there)."""
        if count is None or count != self._revocations:
            self._holders.clear()
            self._revocations = count


class RevokedMeanwhile(RunAlone):
    """A writer's batch answered a key from memory while the revocation count it read with
    its first pipeline had moved: it runs again one request at a time."""


class _Revocations:
    """One transaction's reading of the revocation count for a `KeyCache`."""

    __slots__ = ("keys", "read", "trusted")

    def __init__(self, keys: KeyCache) -> None:
        self.keys = keys
        #: The count has been read in this transaction.
        self.read = False
        #: The counts as of which keys were answered from memory before it was (writer
        #: threads share the memory: another may have read a newer count meanwhile).
        self.trusted: set[int | None] = set()

    def counted(self, row: tuple[int] | None) -> None:
        self.read = True
        count = None if row is None else row[0]
        self.keys._counted(count)
        if self.trusted and (count is None or self.trusted != {count}):
            raise RevokedMeanwhile("A key was revoked since this process last read the count.")


class KeyScopeRefused(LedgerError):
    """The key is good but its scope does not allow the work (a runtime key on admin work)."""

    code = "forbidden"


def checked_key(
    session: Session, keys: KeyCache, secret_hash: str, scope: str | None = None
) -> KeyHolder:
    """The key as of this transaction: KeyRefused when it is unknown or revoked, then, with
    `scope`, KeyScopeRefused when it is of another scope."""
    holder = keys.holder_of(session, secret_hash)
    if holder is None:
        raise KeyRefused("Unknown or revoked API key.")
    if scope is not None and holder.scope != scope:
        raise KeyScopeRefused(f"This needs an API key of the {scope} scope.")
    return holder


def as_key_holder(
    session: Session,
    keys: KeyCache,
    secret_hash: str,
    service: Callable[Concatenate[Session, int, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """`service(session, account_id, ...)` for the account of the key, which is checked in
    this same transaction (raises KeyRefused when it is unknown or revoked)."""
    holder = checked_key(session, keys, secret_hash, None)
    return service(session, holder.account_id, *args, **kwargs)


def as_key_actor(
    session: Session,
    keys: KeyCache,
    secret_hash: str,
    scope: str | None,
    service: Callable[..., T],
    *args: object,
    **kwargs: object,
) -> T:
    """As `as_key_holder`, for a change the audit trail records: `service` is also given
    `actor=`, the key. With `scope`, a key of another scope raises KeyScopeRefused (after
    KeyRefused: a revoked key is unknown whatever its scope)."""
    holder = checked_key(session, keys, secret_hash, scope)
    return service(session, holder.account_id, *args, actor=holder.actor, **kwargs)


def look_up(session: Session, keys: KeyCache, secret_hash: str) -> KeyHolder | None:
    """The key as of this transaction, or None (see KeyCache.holder_of)."""
    return keys.holder_of(session, secret_hash)
