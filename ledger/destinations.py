"""Each account's destinations beyond Slack: webhook endpoints (`creditbot webhooks
add|list|remove`) and alert email addresses (`creditbot emails add|list|remove`).

An endpoint's signing secret is made here and returned once, when it is added; it is
stored encrypted with CREDITBOT_ENCRYPTION_KEYS (creditbot signs with it, so it cannot be
hashed; ledger/secrets_at_rest.py), and without keys no endpoint is added.
Removing a destination removes its deliveries still waiting. Adding and removing one are
settings changes: each is written to the audit trail with who made it (never the secret).
"""

from __future__ import annotations

import base64
import ipaddress
import re
import secrets
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ledger import audit
from ledger.audit import Actor
from ledger.cycles import utcnow
from ledger.errors import InvalidInput, NotFound
from ledger.models.destinations import AlertEmail, OutboxDelivery, WebhookEndpoint
from ledger.outbox import WEBHOOK_EVENT_TYPES
from ledger.secrets_at_rest import ENV, EncryptionKeyError, SecretCipher

SECRET_PREFIX = "whsec_"
#: Families an endpoint may ask for besides single event types.
EVENT_FAMILIES = ("alert.*", "agent.*")
_LOCAL_HOSTS = ("localhost",)
# Deliberately plain: one @, no spaces, commas, angle brackets or control characters (an
# address goes into a mail header as it is).
_ADDRESS = re.compile(
    r"[^@\s,;<>\"()\[\]\\\x00-\x1f\x7f]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}"
)


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _loopback(host: str) -> bool:
    if host in _LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> str:
    """An endpoint URL: https (plain http only to this machine, for testing)."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host or len(url) > 2000:
        raise InvalidInput(f"{url!r} is not a webhook URL: give https://host/path.")
    if parts.scheme == "http" and not _loopback(host):
        raise InvalidInput("A webhook URL must use https (plain http only to localhost).")
    if parts.username or parts.password:
        raise InvalidInput("A webhook URL carries no user or password: the signature is its proof.")
    return url.strip()


def check_event_types(event_types: Iterable[str]) -> list[str]:
    """Event types an endpoint asks for; empty means all of them."""
    chosen = []
    for raw in event_types:
        name = raw.strip()
        if not name:
            continue
        if name not in WEBHOOK_EVENT_TYPES and name not in EVENT_FAMILIES:
            known = ", ".join((*EVENT_FAMILIES, *WEBHOOK_EVENT_TYPES))
            raise InvalidInput(f"{name!r} is not an event type: use one of {known}.")
        if name not in chosen:
            chosen.append(name)
    return chosen


def add_endpoint(
    session: Session,
    account_id: int,
    url: str,
    *,
    cipher: SecretCipher | None,
    event_types: Iterable[str] = (),
    description: str | None = None,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint of the account, and its signing secret (shown this once). `cipher`
    (CREDITBOT_ENCRYPTION_KEYS) encrypts the secret; None refuses."""
    if cipher is None:
        raise EncryptionKeyError(
            f"{ENV} is not set, and webhook signing secrets are only kept encrypted:"
            " make a key with `creditbot slack new-key` and set it."
        )
    secret = new_secret()
    endpoint = WebhookEndpoint(
        account_id=account_id,
        url=check_url(url),
        secret=cipher.encrypt(secret),
        event_types=check_event_types(event_types),
        description=(description or "").strip()[:200] or None,
        created_at=now or utcnow(),
    )
    session.add(endpoint)
    session.flush()
    audit.record(
        session, account_id, actor, "webhook.added", {}, _endpoint_settings(endpoint),
        subject=endpoint.id, now=endpoint.created_at, always=True,
    )  # fmt: skip
    return endpoint, secret


def _endpoint_settings(endpoint: WebhookEndpoint) -> dict[str, object]:
    """What the audit trail keeps of an endpoint: where it points and what it gets."""
    return {"url": endpoint.url, "event_types": list(endpoint.event_types or []),
            "description": endpoint.description}  # fmt: skip


def endpoints(session: Session, account_id: int | None = None) -> list[WebhookEndpoint]:
    stmt = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
    if account_id is not None:
        stmt = stmt.where(WebhookEndpoint.account_id == account_id)
    return list(session.execute(stmt).scalars())


def remove_endpoint(
    session: Session,
    endpoint_id: int,
    account_id: int | None = None,
    *,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> None:
    """Remove the endpoint and what was still on its way to it."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or (account_id is not None and endpoint.account_id != account_id):
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    settings = _endpoint_settings(endpoint)
    session.execute(delete(OutboxDelivery).where(OutboxDelivery.endpoint_id == endpoint_id))
    session.delete(endpoint)
    session.flush()
    audit.record(
        session, endpoint.account_id, actor, "webhook.removed", settings,
        dict.fromkeys(settings), subject=endpoint_id, now=now,
    )  # fmt: skip


def check_address(address: str) -> str:
    value = address.strip()
    if not _ADDRESS.fullmatch(value):
        raise InvalidInput(f"{address!r} is not an email address.")
    return value


def add_email(
    session: Session,
    account_id: int,
    address: str,
    *,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> AlertEmail:
    """Send the account's alerts to `address` too (once per address: adding it again
    changes nothing, and records nothing)."""
    value = check_address(address)
    found = session.execute(
        select(AlertEmail).where(AlertEmail.account_id == account_id, AlertEmail.address == value)
    ).scalar_one_or_none()
    if found is not None:
        return found
    email = AlertEmail(account_id=account_id, address=value, created_at=now or utcnow())
    session.add(email)
    session.flush()
    audit.record(
        session, account_id, actor, "alert_email.added", {}, {"address": value},
        subject=email.id, now=email.created_at, always=True,
    )  # fmt: skip
    return email


def emails(session: Session, account_id: int | None = None) -> list[AlertEmail]:
    stmt = select(AlertEmail).order_by(AlertEmail.id)
    if account_id is not None:
        stmt = stmt.where(AlertEmail.account_id == account_id)
    return list(session.execute(stmt).scalars())


def remove_email(
    session: Session,
    account_id: int,
    address: str,
    *,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> None:
    """Stop emailing the account's alerts to `address`."""
    found = session.execute(
        select(AlertEmail).where(
            AlertEmail.account_id == account_id, AlertEmail.address == address.strip()
        )
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"{address!r} does not receive this account's alerts.")
    session.execute(delete(OutboxDelivery).where(OutboxDelivery.email_id == found.id))
    session.delete(found)
    session.flush()
    audit.record(
        session, account_id, actor, "alert_email.removed", {"address": found.address},
        {"address": None}, subject=found.id, now=now,
    )  # fmt: skip
