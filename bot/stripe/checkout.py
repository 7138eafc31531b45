"""Stripe Checkout pages, made when someone presses the button: a top-up (payment mode,
which also saves the card) and adding or replacing the saved card (setup mode)."""

from __future__ import annotations

from datetime import timedelta

from bot.context import AppContext
from bot.stripe.client import client, creditbot_metadata, public_url
from bot.stripe.customers import customer_id_of, load_payer
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.topups import attach_checkout_session, open_checkout_topup

#: Checkout pages expire within the hour (Stripe's minimum is 30 minutes).
CHECKOUT_TTL = timedelta(minutes=59)


def _return_urls(context: AppContext) -> dict[str, object]:
    """Where Checkout sends the browser back, and when the page expires."""
    return {
        "expires_at": int((utcnow() + CHECKOUT_TTL).timestamp()),
        "success_url": public_url(
            context, "/stripe/checkout/success?session_id={CHECKOUT_SESSION_ID}"
        ),
        "cancel_url": public_url(context, "/stripe/checkout/cancel"),
    }


def create_topup_checkout(
    context: AppContext, account_id: int, amount_minor: int, user_id: str
) -> str:
    """A Stripe Checkout page (payment mode, saves the card) for a top-up; returns its URL.

    One transaction checks the amount and opens the top-up, the Stripe call makes the page,
    one more attaches it to the top-up (and the first top-up of an account creates its
    Stripe customer in between).
    """
    topup = transaction(
        context.sessions,
        lambda s: open_checkout_topup(s, account_id, amount_minor, requested_by=user_id),
    )
    payer = topup.payer
    metadata = creditbot_metadata(account_id, "checkout", topup_id=topup.id, user=user_id)
    session = client(context).v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "customer": customer_id_of(context, payer),
            "client_reference_id": str(account_id),
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": payer.currency.lower(),
                        "unit_amount": amount_minor,
                        "product_data": {"name": f"creditbot credits for {payer.name}"},
                    },
                }
            ],
            "metadata": metadata,
            "payment_intent_data": {"setup_future_usage": "off_session", "metadata": metadata},
            **_return_urls(context),
        },
    )
    transaction(context.sessions, lambda s: attach_checkout_session(s, topup.id, session.id))
    return session.url


def create_card_checkout(context: AppContext, account_id: int, user_id: str) -> str:
    """A Stripe Checkout page in setup mode that adds or replaces the saved card."""
    payer = load_payer(context, account_id)
    metadata = creditbot_metadata(account_id, "card", user=user_id)
    session = client(context).v1.checkout.sessions.create(
        params={
            "mode": "setup",
            "customer": customer_id_of(context, payer),
            "currency": payer.currency.lower(),
            "payment_method_types": ["card"],
            "client_reference_id": str(account_id),
            "metadata": metadata,
            "setup_intent_data": {"metadata": metadata},
            **_return_urls(context),
        }
    )
    return session.url


def create_fix_checkout(
    context: AppContext, account_id: int, reason: str | None, amount_minor: int, user_id: str
) -> tuple[str, str]:
    """The Checkout page that fixes a failed recharge, made for the billing admin who asked:
    `("payment", url)` pays the recharge on Checkout when the bank wanted the cardholder to
    authenticate (which saves the card again), `("setup", url)` adds or replaces the card
    otherwise. Like every Checkout page it expires within the hour and is used once."""
    if reason == "authentication_required":
        return "payment", create_topup_checkout(context, account_id, amount_minor, user_id)
    return "setup", create_card_checkout(context, account_id, user_id)
