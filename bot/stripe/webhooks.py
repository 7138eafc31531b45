"""Verified Stripe events, each processed once: a Checkout Session completed (a top-up paid,
a card saved), a PaymentIntent succeeded or failed, a charge refunded, a customer's
default card changed (in the Customer Portal).

The object is re-read from Stripe first, so an event that arrives late or out of order
acts on the current state. What the object means is then recorded in the transaction that
marks the event processed. Reconciliation reuses the readers below for payments whose
event never came.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import stripe
from sqlalchemy.orm import Session

from bot.context import AppContext
from bot.stripe.client import account_of, as_dict, client, fix_link_base, object_id
from bot.stripe.customers import owned, save_card_quietly, save_payment_method
from bot.stripe.payment_intents import apply_payment_intent, intent_outcome, purpose_of
from ledger.db import transaction
from ledger.stripe_records import event_processed, mark_event, stripe_customer
from ledger.topups import record_payment, record_refund

log = logging.getLogger(__name__)

#: What recording one Stripe object does, run in the caller's transaction.
Work = Callable[[Session], object]

#: How long after its creation an event whose object Stripe does not know is answered
#: 503 (so Stripe sends it again: a key being fixed, a replica behind); after that it is
#: recorded as processed and answered 200, and Stripe stops.
UNKNOWN_OBJECT_RETRY_SECONDS = 3600

HANDLED_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
)
#: A customer changed (its default card replaced in the Customer Portal, Manage card): it
#: is read again and its default card saved. That only copies Stripe's current state, so
#: it needs no once-per-event record: a repeat saves the same card again, or nothing.
CUSTOMER_UPDATED = "customer.updated"


def handle_event(context: AppContext, event_id: str, event_type: str, obj: dict[str, Any]) -> str:
    """Process one verified Stripe event once. Returns what happened ('ignored',
    'duplicate', 'processed')."""
    if event_type == CUSTOMER_UPDATED:
        customer_work(context, as_dict(client(context).v1.customers.retrieve(obj["id"])))
        return "processed"
    if event_type not in HANDLED_EVENTS:
        return "ignored"
    if transaction(context.sessions, lambda s: event_processed(s, event_id)):
        return "duplicate"
    api = client(context).v1
    if event_type.startswith("checkout.session."):
        work = checkout_session_work(context, as_dict(api.checkout.sessions.retrieve(obj["id"])))
    elif event_type.startswith("payment_intent."):
        work = payment_intent_work(context, as_dict(api.payment_intents.retrieve(obj["id"])))
    else:
        work = refund_work(as_dict(api.charges.retrieve(obj["id"])))

    def record(session: Session) -> str:
        if not mark_event(session, event_id, event_type):
            return "duplicate"
        if work is not None:
            work(session)
        return "processed"

    return transaction(context.sessions, record)


def checkout_session_work(context: AppContext, session_obj: dict[str, Any]) -> Work | None:
    """What a Checkout Session of this account means: a saved card (setup mode, saved at
    once) or a paid top-up (the returned work credits it). None when there is nothing to
    record."""
    account_id = account_of(session_obj)
    if account_id is None:
        return None
    customer_id = object_id(session_obj.get("customer"))
    if not owned(context, account_id, customer_id):
        return None
    if session_obj.get("mode") == "setup":
        if session_obj.get("status") != "complete":
            return None
        setup_id = object_id(session_obj["setup_intent"])
        setup = as_dict(client(context).v1.setup_intents.retrieve(setup_id))
        method = object_id(setup.get("payment_method"))
        if setup.get("status") == "succeeded" and method and customer_id:
            save_payment_method(context, account_id, customer_id, method)
        return None
    if session_obj.get("payment_status") != "paid":
        return None
    intent_id = object_id(session_obj.get("payment_intent"))
    if intent_id and customer_id:
        intent = as_dict(client(context).v1.payment_intents.retrieve(intent_id))
        method = object_id(intent.get("payment_method"))
        if method:
            save_card_quietly(context, account_id, customer_id, method)
    meta = session_obj.get("metadata") or {}
    topup_id = meta.get("creditbot_topup_id")
    return lambda session: record_payment(
        session,
        account_id,
        amount_minor=int(session_obj["amount_total"]),
        currency=session_obj["currency"],
        payment_intent_id=intent_id,
        checkout_session_id=session_obj["id"],
        topup_id=int(topup_id) if topup_id else None,
        source="checkout",
        requested_by=meta.get("creditbot_user"),
    )


def customer_work(context: AppContext, customer: dict[str, Any]) -> bool:
    """A customer of this account whose default card changed (in the Customer Portal):
    that card is saved as the one auto-recharge and one-click top-ups charge. True when
    it saved one."""
    account_id = account_of(customer)
    customer_id = customer.get("id")
    if account_id is None or not owned(context, account_id, customer_id):
        return False
    method = object_id((customer.get("invoice_settings") or {}).get("default_payment_method"))
    saved = transaction(context.sessions, lambda s: stripe_customer(s, account_id))
    if not method or not customer_id or (saved is not None and saved.payment_method_id == method):
        return False
    save_payment_method(context, account_id, customer_id, method)
    return True


def payment_intent_work(context: AppContext, intent: dict[str, Any]) -> Work | None:
    """What a PaymentIntent creditbot made for this account means (`apply_payment_intent`
    in the returned work). A paid Checkout top-up's card is saved for later first."""
    purpose = purpose_of(intent)
    customer_id = object_id(intent.get("customer"))
    if purpose is None or not owned(context, purpose.account_id, customer_id):
        return None
    outcome = intent_outcome(intent)
    method = object_id(intent.get("payment_method"))
    if purpose.kind == "checkout" and outcome.status == "succeeded" and method:
        save_card_quietly(context, purpose.account_id, customer_id or "", method)
    fix_base = fix_link_base(context)
    return lambda session: apply_payment_intent(session, purpose, outcome, fix_link_base=fix_base)


def refund_work(charge: dict[str, Any]) -> Work | None:
    """What a charge's refunds mean: its credits taken back, up to Stripe's running total."""
    intent_id = object_id(charge.get("payment_intent"))
    if not intent_id:
        return None
    return lambda session: record_refund(
        session,
        payment_intent_id=intent_id,
        charge_id=charge["id"],
        amount_refunded_minor=int(charge.get("amount_refunded") or 0),
    )


def unknown_object(exc: stripe.StripeError) -> bool:
    """Whether Stripe answered that the object an event names does not exist (for this
    key: another account's or mode's object, or one deleted since)."""
    return isinstance(exc, stripe.InvalidRequestError) and (
        exc.http_status == 404 or exc.code == "resource_missing"
    )


def give_up_on_unknown_object(
    context: AppContext, event_id: str, event_type: str, created: int, now: float | None = None
) -> str | None:
    """An event whose object Stripe does not know: None while the event is younger than
    UNKNOWN_OBJECT_RETRY_SECONDS (answer 503, Stripe retries); after that it is recorded
    as processed, changing nothing else, and 'unknown_object' is returned (answer 200)."""
    age = (time.time() if now is None else now) - created
    if age < UNKNOWN_OBJECT_RETRY_SECONDS:
        return None
    recorded = transaction(context.sessions, lambda s: mark_event(s, event_id, event_type))
    if not recorded:
        return "duplicate"
    log.error(
        "Stripe event %s (%s): Stripe does not know its object after %d s of retries; "
        "recorded as processed, nothing credited",
        event_id,
        event_type,
        age,
    )
    return "unknown_object"
