"""Short-lived signed links under PUBLIC_URL: the chart images Slack fetches and the
statements a person downloads, without a session.

A link carries its expiry and an HMAC-SHA256 over its path, its parameters and the expiry,
keyed with SECRET_KEY (or the server's own secret, kept in the database, encrypted with
CREDITBOT_ENCRYPTION_KEYS when they are set): changing any of them, or waiting past the
expiry, makes it refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import urlencode

from bot.context import AppContext, secrets_cipher
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.web_access import server_secret

#: How long a chart or statement link works.
LINK_TTL = timedelta(hours=1)
_CACHED = "_signed_links_key"


def link_key(context: AppContext) -> bytes:
    """SECRET_KEY, or the server's own secret (made once, read once per process). Raises
    EncryptionKeyError when the keys do not open the stored one (`creditbot serve` refuses
    to start on that)."""
    if context.settings.secret_key:
        return context.settings.secret_key.encode()
    key: bytes | None = getattr(context, _CACHED, None)
    if key is None:
        cipher = secrets_cipher(context)
        key = transaction(context.sessions, lambda s: server_secret(s, cipher=cipher)).encode()
        setattr(context, _CACHED, key)  # read once per process and database
    return key


def _signature(key: bytes, path: str, params: Mapping[str, str], expires: int) -> str:
    message = "\n".join([path, *(f"{k}={params[k]}" for k in sorted(params)), str(expires)])
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def signed_url(
    context: AppContext,
    path: str,
    params: Mapping[str, str],
    *,
    now: datetime | None = None,
    ttl: timedelta = LINK_TTL,
) -> str:
    """PUBLIC_URL + path, with the parameters, the expiry and the signature. The expiry
    is rounded up to the next 10 minutes, so the same link is made for a while (a Home tab
    that shows it is not republished for a new signature alone)."""
    expires = -(-int(((now or utcnow()) + ttl).timestamp()) // 600) * 600
    query = {**params, "expires": str(expires)}
    query["signature"] = _signature(link_key(context), path, params, expires)
    return f"{context.settings.public_url.rstrip('/')}{path}?{urlencode(query)}"


def valid(
    context: AppContext,
    path: str,
    params: Mapping[str, str],
    expires: str,
    signature: str,
    *,
    now: datetime | None = None,
) -> bool:
    """Whether the link was made by this server for exactly these parameters and is not
    past its expiry."""
    if (
        not (expires.isdigit() and len(expires) <= 12)
        or int(expires) < (now or utcnow()).timestamp()
    ):
        return False
    expected = _signature(link_key(context), path, params, int(expires))
    return hmac.compare_digest(expected, signature)
