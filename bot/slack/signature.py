"""Slack's request signature (v0), checked on the raw bytes before anything reads them.

slack_sdk's `SignatureVerifier` decodes the body as UTF-8 and reads the timestamp with
`int()` first, so a body that is not UTF-8 or a timestamp such as "abc" raises instead of
failing the check. Here every input gives an answer: None for a genuine request, else why
it is refused. https://api.slack.com/authentication/verifying-requests-from-slack
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

#: Slack's window: an older (or a future) timestamp is a replay.
MAX_AGE_SECONDS = 5 * 60


def signature_refusal(
    secret: str, body: bytes, headers: Mapping[str, str], now: float | None = None
) -> str | None:
    """Why this request is not Slack's, or None when its signature holds. `headers`
    is looked up case-insensitively by Starlette's `Headers`, or pass lower-case keys."""
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    if not timestamp or not signature:
        return "X-Slack-Request-Timestamp or X-Slack-Signature is missing"
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return "X-Slack-Request-Timestamp is not a Unix time"
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_AGE_SECONDS:
        return "X-Slack-Request-Timestamp is more than 5 minutes away from now"
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = b"v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest().encode()
    # Starlette decodes header bytes as latin-1, so this gives back the bytes sent.
    if not hmac.compare_digest(expected, signature.encode("latin-1", "replace")):
        return "X-Slack-Signature does not match the body"
    return None
