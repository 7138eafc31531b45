"""Reconciliation: a lost webhook never loses a payment, nor a refund. Paid Checkout
Sessions and succeeded PaymentIntents of the last days that creditbot has not recorded are
recorded now, and so are the refunds of the last days, exactly as their webhooks would
have recorded them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot.context import AppContext
from bot.stripe.client import account_of, as_dict, client, object_id
from bot.stripe.webhooks import Work, checkout_session_work, payment_intent_work, refund_work
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.errors import LedgerError
from ledger.topups import PaymentResult, RefundResult, payment_recorded

log = logging.getLogger(__name__)

#: How far back reconciliation looks for payments whose webhook never came.
RECONCILE_WINDOW = timedelta(days=3)


def _recent(listing: Any, since: int) -> list[dict[str, Any]]:
    """Objects of a Stripe list created since `since` (Stripe lists newest first)."""
    found = []
    for item in listing.auto_paging_iter():
        data = as_dict(item)
        if int(data.get("created") or 0) < since:
            break
        found.append(data)
    return found


#: Told after each Stripe object looked at: how many so far, and how many were credited.
Progress = Callable[[int, int], None]


def reconcile_payments(
    context: AppContext, *, since: datetime | None = None, progress: Progress | None = None
) -> int:
    """Credit paid Checkout Sessions and succeeded PaymentIntents whose webhook never came.
    Returns how many payments were credited now; 0 when Stripe is not configured."""
    if not context.settings.stripe_secret_key:
        return 0
    since_ts = int((since or utcnow() - RECONCILE_WINDOW).timestamp())
    api = client(context).v1
    credited = checked = 0
    for session_obj in _recent(api.checkout.sessions.list(params={"limit": 100}), since_ts):
        checked += 1
        if session_obj.get("mode") == "payment" and session_obj.get("payment_status") == "paid":
            if account_of(session_obj) is not None and not _known(context, None, session_obj["id"]):
                credited += _credit(context, checkout_session_work(context, session_obj))
        if progress:
            progress(checked, credited)
    for intent in _recent(api.payment_intents.list(params={"limit": 100}), since_ts):
        checked += 1
        if intent.get("status") == "succeeded" and account_of(intent) is not None:
            if not _known(context, intent["id"], None):
                credited += _credit(context, payment_intent_work(context, intent))
        if progress:
            progress(checked, credited)
    return credited


def reconcile_refunds(context: AppContext, *, since: datetime | None = None) -> int:
    """Take back the refunds of the last days whose webhook never came (a refund Stripe
    made stays made: without this the wallet would keep the credits of refunded money).
    Each charge's refunds are recorded up to Stripe's running total, so a refund already
    taken back changes nothing. Returns how many charges had refunds taken back now."""
    if not context.settings.stripe_secret_key:
        return 0
    since_ts = int((since or utcnow() - RECONCILE_WINDOW).timestamp())
    api = client(context).v1
    charges = {
        object_id(r.get("charge"))
        for r in _recent(api.refunds.list(params={"limit": 100}), since_ts)
    }
    taken = 0
    for charge_id in sorted(c for c in charges if c):
        work = refund_work(as_dict(api.charges.retrieve(charge_id)))
        if work is None:
            continue
        try:
            result = transaction(context.sessions, work)
        except LedgerError as exc:
            log.warning("reconciliation could not record a refund: %s", exc)
            continue
        if isinstance(result, RefundResult) and not result.replayed:
            taken += 1
    return taken


def _known(context: AppContext, intent_id: str | None, session_id: str | None) -> bool:
    return transaction(
        context.sessions,
        lambda s: payment_recorded(s, payment_intent_id=intent_id, checkout_session_id=session_id),
    )


def _credit(context: AppContext, work: Work | None) -> int:
    """1 if recording the payment credited it now, else 0 (nothing to do, already
    credited, or refused: logged)."""
    if work is None:
        return 0
    try:
        result = transaction(context.sessions, work)
    except LedgerError as exc:
        log.warning("reconciliation could not record a payment: %s", exc)
        return 0
    return 1 if isinstance(result, PaymentResult) and not result.replayed else 0
