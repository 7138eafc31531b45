"""Each account's Stripe customer, created the first time it is needed, and the card saved
on it for off-session payments (`ledger.stripe_records` keeps both)."""

from __future__ import annotations

import logging

import stripe

from bot.context import AppContext
from bot.stripe.client import as_dict, client, creditbot_metadata
from ledger.accounts import get_account
from ledger.db import transaction
from ledger.errors import LedgerError
from ledger.models.payments import StripeCustomer
from ledger.stripe_records import Payer, payer, save_card, save_customer, stripe_customer

log = logging.getLogger(__name__)


def load_payer(context: AppContext, account_id: int) -> Payer:
    """The account and its Stripe customer, as a Stripe call needs them (one transaction)."""
    return transaction(context.sessions, lambda s: payer(s, get_account(s, account_id)))


def customer_id_of(context: AppContext, who: Payer) -> str:
    """`who`'s Stripe customer id, created at Stripe the first time it is needed."""
    if who.customer_id is not None:
        return who.customer_id
    customer = client(context).v1.customers.create(
        params={"name": who.name, "metadata": creditbot_metadata(who.account_id, "account")},
    )
    # Two callers racing may each create one: the first saved wins, the other stays unused.
    row = transaction(context.sessions, lambda s: save_customer(s, who.account_id, customer.id))
    return row.customer_id


def ensure_customer(context: AppContext, account_id: int) -> str:
    """The account's Stripe customer id, created the first time it is needed."""
    return customer_id_of(context, load_payer(context, account_id))


def owned(context: AppContext, account_id: int, customer_id: str | None) -> bool:
    """Whether the Stripe customer is this account's: objects of another creditbot
    sharing the Stripe account (staging beside production) are left alone."""
    row = transaction(context.sessions, lambda s: stripe_customer(s, account_id))
    return row is not None and customer_id is not None and row.customer_id == customer_id


def save_payment_method(
    context: AppContext, account_id: int, customer_id: str, payment_method_id: str
) -> StripeCustomer:
    """Make the card the customer's default and store its brand and last 4."""
    api = client(context).v1
    method = as_dict(api.payment_methods.retrieve(payment_method_id))
    if method.get("customer") != customer_id:
        api.payment_methods.attach(payment_method_id, params={"customer": customer_id})
    api.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": payment_method_id}}
    )
    card = method.get("card") or {}
    return transaction(
        context.sessions,
        lambda s: save_card(
            s,
            account_id,
            customer_id=customer_id,
            payment_method_id=payment_method_id,
            brand=card.get("brand"),
            last4=card.get("last4"),
        ),
    )


def save_card_quietly(context: AppContext, account_id: int, customer_id: str, method: str) -> None:
    """A paid top-up saved its card for later: it becomes the card auto-recharge uses."""
    try:
        save_payment_method(context, account_id, customer_id, method)
    except (stripe.StripeError, LedgerError) as exc:
        log.warning("card of account %s not saved: %s", account_id, exc)


def receipt_email(context: AppContext, customer_id: str) -> str | None:
    """Where Stripe sends the receipt of a top-up (STRIPE_TOPUP_RECEIPTS=receipt): the
    customer's email (typed at the first Checkout, or set in the Customer Portal). None
    when receipts are not asked for, the customer has no email, or Stripe cannot say: a
    receipt never holds up a payment."""
    if context.settings.stripe_topup_receipts != "receipt":
        return None
    try:
        customer = as_dict(client(context).v1.customers.retrieve(customer_id))
    except stripe.StripeError as exc:
        log.warning("no receipt email for customer %s: %s", customer_id, exc)
        return None
    return customer.get("email") or None
