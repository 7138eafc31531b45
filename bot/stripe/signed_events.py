"""A request to /stripe/webhook read as a Stripe event: signature first, shape second.

The signature is checked by stripe's own `WebhookSignature` over the raw body; only then is
the body parsed, and an event that is not what Stripe sends (not JSON, not an object, no
`data.object`, no id of the object a handled event names) is refused with a 400 that says
why, before anything acts on it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import stripe

from bot.stripe.webhooks import CUSTOMER_UPDATED, HANDLED_EVENTS

#: Stripe's ids and event types are short printable ASCII ("evt_1Nv…", "pi_3Ab…").
_TOKEN = re.compile(r"[\x21-\x7e]{1,255}")


@dataclass(frozen=True)
class SignedEvent:
    """The parts of a verified Stripe event creditbot reads."""

    id: str
    type: str
    created: int  # Unix time Stripe created the event (signed, unlike its delivery time)
    object: dict[str, Any]


class EventRefused(Exception):
    """The request is not a Stripe event creditbot can act on: answer 400 with `code`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def read_event(payload: bytes, signature: str, secret: str, tolerance: int) -> SignedEvent:
    """The event in `payload`, once `signature` (the Stripe-Signature header) holds for it
    and `secret` within `tolerance` seconds. Raises EventRefused."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise EventRefused(
            "invalid_signature", "The body is not UTF-8: Stripe did not sign it."
        ) from None
    if not signature:
        raise EventRefused("invalid_signature", "The Stripe-Signature header is missing.")
    if not signature.isascii():  # stripe's comparison raises on other characters
        raise EventRefused("invalid_signature", "The Stripe-Signature header is not ASCII.")
    try:
        stripe.WebhookSignature.verify_header(text, signature, secret, tolerance)
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise EventRefused("invalid_signature", f"Stripe-Signature refused: {exc}") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise EventRefused("malformed_event", "The event is not JSON.") from None
    return _event(data)


def _event(data: Any) -> SignedEvent:
    if not isinstance(data, dict):
        raise EventRefused("malformed_event", "The event is not a JSON object.")
    event_id, event_type, created = data.get("id"), data.get("type"), data.get("created")
    if not _token(event_id):
        raise EventRefused("malformed_event", "The event has no id.")
    if not _token(event_type):
        raise EventRefused("malformed_event", "The event has no type.")
    if not isinstance(created, int) or isinstance(created, bool) or created < 0:
        raise EventRefused("malformed_event", "The event has no creation time.")
    body = data.get("data")
    obj = body.get("object") if isinstance(body, dict) else None
    if not isinstance(obj, dict):
        raise EventRefused("malformed_event", "The event has no data.object.")
    if event_type in (*HANDLED_EVENTS, CUSTOMER_UPDATED) and not _token(obj.get("id")):
        raise EventRefused("malformed_event", f"The event ({event_type}) names no object id.")
    return SignedEvent(event_id, event_type, created, obj)


def _token(value: Any) -> bool:
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None
