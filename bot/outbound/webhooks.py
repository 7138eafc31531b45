"""Signed webhooks to each account's endpoints (Standard Webhooks).

Each event is one POST of JSON with `webhook-id` (the same for every retry of it, so a
receiver can drop a repeat), `webhook-timestamp` and `webhook-signature`, signed by the
`standardwebhooks` library with the endpoint's secret. A 2xx answer delivers it; anything
else (an error status, a redirect, a timeout, a refused connection) fails the attempt and
the outbox tries again after its backoff (5 s doubling, at most 10 minutes), for as long as
the endpoint exists.

Posted with the standard library (urllib), redirects not followed: the signed body goes to
the URL the account registered and nowhere else.

The secret is kept encrypted (CREDITBOT_ENCRYPTION_KEYS) and decrypted for each delivery;
one the keys cannot open fails that delivery with the reason as its last error, and
`creditbot doctor` names the endpoint.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version

from standardwebhooks import Webhook

from bot.context import AppContext, secrets_cipher
from bot.outbound.delivering import DeliveryFailed, Send, deliver_due
from bot.outbound.events import event_body
from ledger.cycles import utcnow
from ledger.deliveries import Due
from ledger.secrets_at_rest import WEBHOOK_SECRETS, EncryptionKeyError, SecretCipher, reveal

#: Seconds a receiver has to answer.
TIMEOUT = 10
#: The start of a receiver's answer kept as the delivery's last error.
KEEP_ANSWER = 300


def _user_agent() -> str:
    try:
        return f"creditbot/{version('creditbot')}"
    except PackageNotFoundError:
        return "creditbot"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a 3xx is an answer like any other non-2xx: the attempt failed


#: What posts the events: the seam a test or the simulation answers through instead of the
#: network (an opener with a handler of its own), as `bot.slack.clients.client_class` is.
opener: urllib.request.OpenerDirector = urllib.request.build_opener(_NoRedirects)
USER_AGENT = _user_agent()


def webhook_id(row: Due) -> str:
    """The event's id: one per alert and event type, the same on every retry and endpoint."""
    return f"msg_{row.message_id}_{row.event_type.replace('.', '_')}"


def signing_secret(row: Due, cipher: SecretCipher | None) -> str:
    """The endpoint's signing secret in clear; DeliveryFailed when the keys cannot open it."""
    try:
        return reveal(row.secret or "", cipher, WEBHOOK_SECRETS[0].what)
    except EncryptionKeyError as exc:
        raise DeliveryFailed(f"not signed: {exc}") from exc


def signed_request(row: Due, secret: str, *, now: datetime | None = None) -> urllib.request.Request:
    """The POST for one delivery: the event's JSON and its Standard Webhooks headers."""
    body = json.dumps(event_body(row), separators=(",", ":"), ensure_ascii=False)
    msg_id, at = webhook_id(row), now or utcnow()
    signature = Webhook(secret).sign(msg_id, at, body)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
    return urllib.request.Request(row.url or "", data=body.encode(), headers=headers, method="POST")


def post(row: Due, secret: str) -> None:
    """Send one event signed with `secret`; raises DeliveryFailed with what the endpoint
    answered."""
    request = signed_request(row, secret)
    try:
        with opener.open(request, timeout=TIMEOUT) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        text = exc.read(KEEP_ANSWER).decode("utf-8", "replace").strip()
        raise DeliveryFailed(f"HTTP {exc.code}" + (f": {text}" if text else "")) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(f"not reached: {reason}") from exc
    if not 200 <= status < 300:
        raise DeliveryFailed(f"HTTP {status}")


def deliver_due_webhooks(context: AppContext, *, now: datetime | None = None) -> int:
    """Post every due webhook delivery; returns how many endpoints took theirs."""

    @contextmanager
    def sender() -> Iterator[Send]:
        try:
            cipher, problem = secrets_cipher(context), None
        except EncryptionKeyError as exc:  # a malformed key: each delivery says so
            cipher, problem = None, str(exc)

        def send(row: Due) -> None:
            if problem is not None:
                raise DeliveryFailed(f"not signed: {problem}")
            post(row, signing_secret(row, cipher))

        yield send

    return deliver_due(context, "webhook", sender, now=now)
