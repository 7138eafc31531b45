"""The Stripe client: the configured secret key, the pinned API version and
`STRIPE_API_BASE`, and the small readers every Stripe module shares (objects as dicts,
creditbot's metadata, links back to creditbot)."""

from __future__ import annotations

from typing import Any

import stripe

from bot.context import AppContext
from ledger.errors import InvalidInput

#: The Stripe API version creditbot is written against (pinned, not the account default).
API_VERSION = "2026-10-28.endive"

#: How requests reach Stripe: None is the network. The simulation (sim/) sets an in-process
#: `stripe.HTTPClient` that answers like Stripe; nothing else changes it.
http_client: stripe.HTTPClient | None = None

_clients: dict[tuple[str, str, stripe.HTTPClient | None], stripe.StripeClient] = {}


class StripeFailed(Exception):
    """Stripe could not be reached or refused a request: nothing was charged. The message
    says what Stripe said (for adapters that answer it, such as the API's 502)."""


def client(context: AppContext) -> stripe.StripeClient:
    """A Stripe client for the configured key, pinned API version and `STRIPE_API_BASE`."""
    settings = context.settings
    if not settings.stripe_secret_key:
        raise InvalidInput("Stripe is not configured: set STRIPE_SECRET_KEY.")
    key = (settings.stripe_secret_key, settings.stripe_api_base, http_client)
    if key not in _clients:
        _clients[key] = stripe.StripeClient(
            settings.stripe_secret_key,
            stripe_version=API_VERSION,
            base_addresses={"api": settings.stripe_api_base.rstrip("/")},
            max_network_retries=1,
            http_client=http_client,
        )
    return _clients[key]


def as_dict(obj: Any) -> dict[str, Any]:
    """A Stripe object (or None, or a dict already) as a plain dict."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    return obj.to_dict()


def object_id(value: Any) -> str | None:
    """An id from a field that is either the id or the expanded object."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return as_dict(value).get("id")


def public_url(context: AppContext, path: str) -> str:
    """`path` on creditbot's public address (where Stripe and browsers reach it)."""
    return context.settings.public_url.rstrip("/") + path


def fix_link_base(context: AppContext) -> str:
    """Failed recharges record `/stripe/fix/<attempt key>` when there is something to fix.
    The address opens nothing (anyone who saw it could have replaced the card): it says
    how a billing admin fixes it, with the alert's Fix the payment button in Slack."""
    return public_url(context, "/stripe/fix/")


def creditbot_metadata(account_id: int, kind: str, **extra: object) -> dict[str, str]:
    """The metadata creditbot puts on what it creates at Stripe: whose it is and why."""
    data = {"creditbot_account_id": str(account_id), "creditbot_kind": kind}
    data.update({f"creditbot_{k}": str(v) for k, v in extra.items() if v is not None})
    return data


def account_of(obj: dict[str, Any]) -> int | None:
    """The account a Stripe object's creditbot metadata names, if any."""
    value = (obj.get("metadata") or {}).get("creditbot_account_id")
    if value is None or not str(value).isdigit():
        return None
    return int(value)
