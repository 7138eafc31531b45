"""Stripe's Customer Portal, where a billing admin manages the saved card, the billing
email and past invoices and receipts: a session made when Manage card is pressed (it
expires within minutes, so it is never put in a message ahead of time)."""

from __future__ import annotations

from bot.context import AppContext
from bot.stripe.client import client, public_url
from bot.stripe.customers import ensure_customer

#: Where the portal's "return" link leads: a page of creditbot's that says to close it.
RETURN_PATH = "/stripe/portal/return"


def create_portal_session(context: AppContext, account_id: int) -> str:
    """A Customer Portal page for the account's Stripe customer (created if it has none
    yet); returns its URL."""
    session = client(context).v1.billing_portal.sessions.create(
        params={
            "customer": ensure_customer(context, account_id),
            "return_url": public_url(context, RETURN_PATH),
        }
    )
    return session.url
