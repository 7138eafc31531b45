"""Stripe Checkout pages, made when someone presses the button: a top-up (payment mode,
which also saves the card, and gives finance a receipt or an invoice as
STRIPE_TOPUP_RECEIPTS says) and adding or replacing the saved card (setup mode)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import stripe

from bot.context import AppContext
from bot.stripe.client import StripeFailed, client, creditbot_metadata, public_url
from bot.stripe.customers import customer_id_of, load_payer, receipt_email
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.stripe_records import Payer
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


@dataclass(frozen=True)
class CheckoutPage:
    topup_id: int
    amount_minor: int
    url: str
    #: A request with the same key made it before: this is that page.
    replayed: bool = False


def create_topup_checkout(
    context: AppContext, account_id: int, amount_minor: int, user_id: str
) -> str:
    """A Stripe Checkout page (payment mode, saves the card) for a top-up; returns its URL."""
    return open_topup_checkout(context, account_id, amount_minor, user_id).url


def open_topup_checkout(
    context: AppContext,
    account_id: int,
    amount_minor: int,
    user_id: str,
    *,
    idempotency_key: str | None = None,
) -> CheckoutPage:
    """A Stripe Checkout page (payment mode, saves the card) for a top-up.

    One transaction checks the amount and opens the top-up, the Stripe call makes the page,
    one more attaches it to the top-up (and the first top-up of an account creates its
    Stripe customer in between). With `idempotency_key`, a repeated request answers the
    page made the first time (or makes it, when the first attempt never got one).
    """
    topup = transaction(
        context.sessions,
        lambda s: open_checkout_topup(
            s, account_id, amount_minor, requested_by=user_id, idempotency_key=idempotency_key
        ),
    )
    if topup.checkout_url:
        return CheckoutPage(topup.id, topup.amount_minor, topup.checkout_url, replayed=True)
    payer = topup.payer
    metadata = creditbot_metadata(account_id, "checkout", topup_id=topup.id, user=user_id)
    try:
        session = _checkout_session(context, account_id, amount_minor, payer, metadata)
    except stripe.StripeError as exc:
        raise StripeFailed(str(exc.user_message or exc)) from exc
    transaction(
        context.sessions, lambda s: attach_checkout_session(s, topup.id, session.id, session.url)
    )
    return CheckoutPage(topup.id, topup.amount_minor, session.url, topup.replayed)


def _checkout_session(
    context: AppContext, account_id: int, amount_minor: int, payer: Payer, metadata: dict
) -> Any:
    customer_id = customer_id_of(context, payer)
    product = f"creditbot credits for {payer.name}"
    params: dict[str, Any] = {
        "mode": "payment",
        "customer": customer_id,
        "client_reference_id": str(account_id),
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": payer.currency.lower(),
                    "unit_amount": amount_minor,
                    "product_data": {"name": product},
                },
            }
        ],
        "metadata": metadata,
        "payment_intent_data": {"setup_future_usage": "off_session", "metadata": metadata},
        **_return_urls(context),
    }
    params.update(receipts(context, customer_id, product, metadata))
    return client(context).v1.checkout.sessions.create(params=params)


def receipts(
    context: AppContext, customer_id: str, description: str, metadata: dict[str, str]
) -> dict[str, Any]:
    """What a Checkout top-up asks Stripe to give finance (STRIPE_TOPUP_RECEIPTS): a paid
    invoice (`invoice_creation`), or a receipt email to the customer's address."""
    mode = context.settings.stripe_topup_receipts
    if mode == "invoice":
        invoice = {"description": description, "metadata": metadata}
        return {"invoice_creation": {"enabled": True, "invoice_data": invoice}}
    email = receipt_email(context, customer_id) if mode == "receipt" else None
    if email:
        intent = {"setup_future_usage": "off_session", "metadata": metadata}
        return {"payment_intent_data": {**intent, "receipt_email": email}}
    return {}


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
