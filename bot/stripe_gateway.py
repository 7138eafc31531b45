"""Stripe: Checkout for top-ups and cards, off-session PaymentIntents for recharges and
one-click top-ups, the webhook's work and reconciliation. The only module that imports
`stripe`; money and credits are recorded through the ledger (`ledger.payments`).

Every Stripe call happens outside a database transaction: the ledger records the intent
(a pending recharge, an open top-up), the call is made, and its outcome is recorded in a
new transaction. Webhooks, the direct answer and reconciliation converge on the same
ledger keys, so a payment is credited once whichever reports it first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import stripe

from bot.context import AppContext
from ledger import outbox
from ledger import payments as pay
from ledger.accounts import get_account
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.errors import InvalidInput, LedgerError
from ledger.settings import check_topup

log = logging.getLogger(__name__)

#: The Stripe API version creditbot is written against (pinned, not the account default).
API_VERSION = "2026-10-28.endive"
#: Checkout pages expire within the hour (Stripe's minimum is 30 minutes).
CHECKOUT_TTL = timedelta(minutes=59)
#: How far back reconciliation looks for payments whose webhook never came.
RECONCILE_WINDOW = timedelta(days=3)

_clients: dict[tuple[str, str], stripe.StripeClient] = {}


def client(context: AppContext) -> stripe.StripeClient:
    """A Stripe client for the configured key, pinned API version and `STRIPE_API_BASE`."""
    settings = context.settings
    if not settings.stripe_secret_key:
        raise InvalidInput("Stripe is not configured: set STRIPE_SECRET_KEY.")
    key = (settings.stripe_secret_key, settings.stripe_api_base)
    if key not in _clients:
        _clients[key] = stripe.StripeClient(
            settings.stripe_secret_key,
            stripe_version=API_VERSION,
            base_addresses={"api": settings.stripe_api_base.rstrip("/")},
            max_network_retries=1,
        )
    return _clients[key]


def _dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    return obj.to_dict()


def _id(value: Any) -> str | None:
    """An id from a field that is either the id or the expanded object."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return _dict(value).get("id")


def _url(context: AppContext, path: str) -> str:
    return context.settings.public_url.rstrip("/") + path


def fix_link_base(context: AppContext) -> str:
    """Failed recharges link to `/stripe/fix/<attempt key>`, which opens a fresh Checkout
    page when clicked (a Checkout link would expire inside an alert)."""
    return _url(context, "/stripe/fix/")


def _metadata(account_id: int, kind: str, **extra: object) -> dict[str, str]:
    data = {"creditbot_account_id": str(account_id), "creditbot_kind": kind}
    data.update({f"creditbot_{k}": str(v) for k, v in extra.items() if v is not None})
    return data


# --- customer and cards ---------------------------------------------------------------


def ensure_customer(context: AppContext, account_id: int) -> str:
    """The account's Stripe customer id, created the first time it is needed."""
    existing = transaction(context.sessions, lambda s: pay.stripe_customer(s, account_id))
    if existing is not None:
        return existing.customer_id
    account = transaction(context.sessions, lambda s: get_account(s, account_id))
    customer = client(context).v1.customers.create(
        params={"name": account.name, "metadata": _metadata(account_id, "account")},
    )
    # Two callers racing may each create one: the first saved wins, the other stays unused.
    row = transaction(context.sessions, lambda s: pay.save_customer(s, account_id, customer.id))
    return row.customer_id


def create_topup_checkout(
    context: AppContext, account_id: int, amount_minor: int, user_id: str
) -> str:
    """A Stripe Checkout page (payment mode, saves the card) for a top-up; returns its URL."""

    def open_topup(session: Any) -> int:
        account = get_account(session, account_id)
        check_topup(account, amount_minor)
        return pay.open_checkout_topup(session, account_id, amount_minor, requested_by=user_id).id

    topup_id = transaction(context.sessions, open_topup)
    account = transaction(context.sessions, lambda s: get_account(s, account_id))
    customer_id = ensure_customer(context, account_id)
    metadata = _metadata(account_id, "checkout", topup_id=topup_id, user=user_id)
    session = client(context).v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "customer": customer_id,
            "client_reference_id": str(account_id),
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": account.currency.lower(),
                        "unit_amount": amount_minor,
                        "product_data": {"name": f"creditbot credits for {account.name}"},
                    },
                }
            ],
            "metadata": metadata,
            "payment_intent_data": {"setup_future_usage": "off_session", "metadata": metadata},
            "expires_at": int((utcnow() + CHECKOUT_TTL).timestamp()),
            "success_url": _url(
                context, "/stripe/checkout/success?session_id={CHECKOUT_SESSION_ID}"
            ),
            "cancel_url": _url(context, "/stripe/checkout/cancel"),
        },
    )
    transaction(context.sessions, lambda s: pay.attach_checkout_session(s, topup_id, session.id))
    return session.url


def create_card_checkout(context: AppContext, account_id: int, user_id: str) -> str:
    """A Stripe Checkout page in setup mode that adds or replaces the saved card."""
    account = transaction(context.sessions, lambda s: get_account(s, account_id))
    customer_id = ensure_customer(context, account_id)
    metadata = _metadata(account_id, "card", user=user_id)
    session = client(context).v1.checkout.sessions.create(
        params={
            "mode": "setup",
            "customer": customer_id,
            "currency": account.currency.lower(),
            "payment_method_types": ["card"],
            "client_reference_id": str(account_id),
            "metadata": metadata,
            "setup_intent_data": {"metadata": metadata},
            "expires_at": int((utcnow() + CHECKOUT_TTL).timestamp()),
            "success_url": _url(
                context, "/stripe/checkout/success?session_id={CHECKOUT_SESSION_ID}"
            ),
            "cancel_url": _url(context, "/stripe/checkout/cancel"),
        }
    )
    return session.url


def save_payment_method(
    context: AppContext, account_id: int, customer_id: str, payment_method_id: str
) -> pay.StripeCustomer:
    """Make the card the customer's default and store its brand and last 4."""
    api = client(context).v1
    method = _dict(api.payment_methods.retrieve(payment_method_id))
    if method.get("customer") != customer_id:
        api.payment_methods.attach(payment_method_id, params={"customer": customer_id})
    api.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": payment_method_id}}
    )
    card = method.get("card") or {}
    return transaction(
        context.sessions,
        lambda s: pay.save_card(
            s,
            account_id,
            customer_id=customer_id,
            payment_method_id=payment_method_id,
            brand=card.get("brand"),
            last4=card.get("last4"),
        ),
    )


# --- off-session charges ---------------------------------------------------------------


@dataclass(frozen=True)
class ChargeOutcome:
    """What Stripe said about an off-session charge."""

    status: str  # 'succeeded' | 'processing' | 'failed' | 'retry'
    payment_intent: dict[str, Any]
    reason: str | None = None
    decline_code: str | None = None
    message: str | None = None

    @property
    def payment_intent_id(self) -> str | None:
        return self.payment_intent.get("id")


def _off_session(
    context: AppContext,
    *,
    customer_id: str,
    payment_method_id: str,
    amount_minor: int,
    currency: str,
    idempotency_key: str,
    metadata: dict[str, str],
) -> ChargeOutcome:
    try:
        intent = client(context).v1.payment_intents.create(
            params={
                "amount": amount_minor,
                "currency": currency.lower(),
                "customer": customer_id,
                "payment_method": payment_method_id,
                "off_session": True,
                "confirm": True,
                "metadata": metadata,
            },
            options={"idempotency_key": idempotency_key},
        )
    except stripe.CardError as exc:
        error = _dict(getattr(exc, "error", None))
        intent = _dict(error.get("payment_intent"))
        code = exc.code or error.get("code")
        if code == "authentication_required":
            return ChargeOutcome(
                "failed", intent, "authentication_required", None, exc.user_message
            )
        decline = error.get("decline_code") or code
        return ChargeOutcome("failed", intent, "card_declined", decline, exc.user_message)
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        return ChargeOutcome("retry", {}, "api_error", None, str(exc.user_message or exc))
    except stripe.StripeError as exc:
        status = exc.http_status or 0
        if status >= 500 or status in (0, 409, 429):
            return ChargeOutcome("retry", {}, "api_error", None, str(exc.user_message or exc))
        return ChargeOutcome("failed", {}, "api_error", None, str(exc.user_message or exc))
    return _intent_outcome(_dict(intent))


def _intent_outcome(intent: dict[str, Any]) -> ChargeOutcome:
    """Classify a PaymentIntent as Stripe currently reports it."""
    status = intent.get("status")
    if status == "succeeded":
        return ChargeOutcome("succeeded", intent)
    if status == "requires_action":
        return ChargeOutcome(
            "failed",
            intent,
            "authentication_required",
            None,
            "The bank asks to confirm this payment.",
        )
    if status in ("processing", "requires_confirmation", "requires_capture"):
        return ChargeOutcome("processing", intent)
    error = intent.get("last_payment_error") or {}
    code = error.get("code")
    if code in ("authentication_required", "payment_intent_authentication_failure"):
        return ChargeOutcome(
            "failed", intent, "authentication_required", None, error.get("message")
        )
    decline = error.get("decline_code") or code
    return ChargeOutcome(
        "failed", intent, "card_declined", decline, error.get("message") or f"Payment {status}."
    )


@dataclass(frozen=True)
class SavedCardCharge:
    """The result of a one-click top-up with the saved card."""

    status: str  # 'succeeded' | 'processing' | 'failed'
    amount_minor: int
    credited: int = 0
    wallet_balance: int | None = None
    reason: str | None = None
    decline_code: str | None = None
    message: str | None = None
    payment_intent_id: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


def charge_saved_card(
    context: AppContext, account_id: int, amount_minor: int, idempotency_key: str, user_id: str
) -> SavedCardCharge:
    """A one-click top-up with the saved card (off-session PaymentIntent)."""

    def card(session: Any) -> pay.StripeCustomer | None:
        check_topup(get_account(session, account_id), amount_minor)
        return pay.stripe_customer(session, account_id)

    customer = transaction(context.sessions, card)
    if customer is None or not customer.payment_method_id:
        return SavedCardCharge(
            "failed",
            amount_minor,
            reason="missing_payment_method",
            message="No card is saved: add one first.",
        )
    account = transaction(context.sessions, lambda s: get_account(s, account_id))
    outcome = _off_session(
        context,
        customer_id=customer.customer_id,
        payment_method_id=customer.payment_method_id,
        amount_minor=amount_minor,
        currency=account.currency,
        idempotency_key=f"creditbot-topup-{account_id}-{idempotency_key}",
        metadata=_metadata(account_id, "saved_card", user=user_id),
    )
    if outcome.status == "succeeded":
        result = _record_intent(context, outcome.payment_intent, account_id, "saved_card")
        return SavedCardCharge(
            "succeeded",
            amount_minor,
            credited=result.credited,
            wallet_balance=result.wallet_balance,
            payment_intent_id=outcome.payment_intent_id,
        )
    if outcome.status == "retry":
        outcome = ChargeOutcome("failed", {}, "api_error", None, outcome.message)
    return SavedCardCharge(
        outcome.status,
        amount_minor,
        reason=outcome.reason,
        decline_code=outcome.decline_code,
        message=outcome.message,
        payment_intent_id=outcome.payment_intent_id,
    )


def _record_intent(
    context: AppContext, intent: dict[str, Any], account_id: int, source: str
) -> pay.PaymentResult:
    meta = intent.get("metadata") or {}
    topup_id = meta.get("creditbot_topup_id")
    return transaction(
        context.sessions,
        lambda s: pay.record_payment(
            s,
            account_id,
            amount_minor=int(intent.get("amount_received") or intent["amount"]),
            currency=intent["currency"],
            payment_intent_id=intent["id"],
            topup_id=int(topup_id) if topup_id else None,
            source=source,
            requested_by=meta.get("creditbot_user"),
        ),
    )


# --- auto-recharge ------------------------------------------------------------------------


def run_recharge(context: AppContext, job: pay.RechargeJob, *, now: datetime | None = None) -> str:
    """Make the Stripe call of a claimed attempt and record its outcome; returns it."""
    outcome = _off_session(
        context,
        customer_id=job.customer_id,
        payment_method_id=job.payment_method_id,
        amount_minor=job.amount_minor,
        currency=job.currency,
        idempotency_key=job.idempotency_key,
        metadata=_metadata(job.account_id, "auto_recharge", recharge_id=job.recharge_id),
    )
    return _record_recharge(context, job.recharge_id, outcome, now=now)


def _record_recharge(
    context: AppContext,
    recharge_id: int,
    outcome: ChargeOutcome,
    *,
    now: datetime | None = None,
) -> str:
    intent = outcome.payment_intent
    if outcome.status == "succeeded":
        transaction(
            context.sessions,
            lambda s: pay.recharge_succeeded(
                s,
                recharge_id,
                payment_intent_id=intent["id"],
                amount_minor=int(intent.get("amount_received") or intent["amount"]),
                currency=intent["currency"],
                now=now,
            ),
        )
    elif outcome.status == "failed":
        fix = None
        if outcome.reason != "api_error":
            key = transaction(
                context.sessions, lambda s: pay.get_recharge(s, recharge_id).idempotency_key
            )
            fix = fix_link_base(context) + key
        transaction(
            context.sessions,
            lambda s: pay.recharge_failed(
                s,
                recharge_id,
                reason=outcome.reason or "card_declined",
                decline_code=outcome.decline_code,
                message=outcome.message,
                fix_url=fix,
                payment_intent_id=outcome.payment_intent_id,
                now=now,
            ),
        )
    elif outcome.status == "retry":
        transaction(
            context.sessions,
            lambda s: pay.recharge_retry_later(s, recharge_id, outcome.message or "", now=now),
        )
    # 'processing': the attempt stays pending; its webhook or the next claim finishes it.
    return outcome.status


def _start(
    context: AppContext, account_id: int, trigger: str, now: datetime | None
) -> pay.RechargeRequest:
    return transaction(
        context.sessions,
        lambda s: pay.request_recharge(
            s, account_id, trigger=trigger, fix_link_base=fix_link_base(context), now=now
        ),
    )


def process_recharge_requests(context: AppContext, *, now: datetime | None = None) -> int:
    """Act on `recharge.requested` outbox messages written by charges; returns how many.

    The charge that wrote the message has long returned: the Stripe call happens here,
    in the scheduler, never on the request path.
    """

    def take(session: Any) -> list[int]:
        messages = outbox.take_due(session, kind_prefix=outbox.RECHARGE_REQUESTED, now=now)
        for message in messages:
            outbox.mark_delivered(session, message.id, now=now)
        return [m.account_id for m in messages if m.account_id is not None]

    account_ids = transaction(context.sessions, take)
    for account_id in dict.fromkeys(account_ids):
        _start_and_run(context, account_id, "charge", now)
    return len(account_ids)


def _start_and_run(
    context: AppContext, account_id: int, trigger: str, now: datetime | None
) -> str | None:
    try:
        request = _start(context, account_id, trigger, now)
    except LedgerError as exc:
        log.warning("recharge for account %s not started: %s", account_id, exc)
        return None
    if request.job is not None:
        return run_recharge(context, request.job, now=now)
    return "failed" if request.failed is not None else None


def recharge_now(context: AppContext, account_id: int, *, now: datetime | None = None) -> str:
    """Start (and run) a recharge for one account if it needs one; says what happened."""
    request = _start(context, account_id, "manual", now)
    if request.job is not None:
        return run_recharge(context, request.job, now=now)
    if request.failed is not None:
        return f"failed: {request.failed.reason}"
    return f"skipped: {request.skipped}"


def sweep_auto_recharge(context: AppContext, *, now: datetime | None = None) -> int:
    """Start a recharge for every account whose wallet sits under its threshold, and
    retry attempts whose Stripe call is due again. Returns how many calls were made."""
    jobs = transaction(context.sessions, lambda s: pay.claim_due_recharges(s, now=now))
    for job in jobs:
        run_recharge(context, job, now=now)
    started = len(jobs)
    for account_id in transaction(context.sessions, pay.accounts_needing_recharge):
        if _start_and_run(context, account_id, "sweep", now) is not None:
            started += 1
    return started


# --- webhook events and reconciliation ---------------------------------------------------

HANDLED_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
)


def _account_of(obj: dict[str, Any]) -> int | None:
    value = (obj.get("metadata") or {}).get("creditbot_account_id")
    if value is None or not str(value).isdigit():
        return None
    return int(value)


def _owned(context: AppContext, account_id: int, customer_id: str | None) -> bool:
    """Whether the Stripe customer is this account's: objects of another creditbot
    sharing the Stripe account (staging beside production) are left alone."""
    row = transaction(context.sessions, lambda s: pay.stripe_customer(s, account_id))
    return row is not None and customer_id is not None and row.customer_id == customer_id


def handle_event(context: AppContext, event_id: str, event_type: str, obj: dict[str, Any]) -> str:
    """Process one verified Stripe event once. The object is re-read from Stripe, so an
    event that arrives late or out of order acts on the current state. Returns what
    happened ('ignored', 'duplicate', 'processed')."""
    if event_type not in HANDLED_EVENTS:
        return "ignored"
    if transaction(context.sessions, lambda s: pay.event_processed(s, event_id)):
        return "duplicate"
    api = client(context).v1
    if event_type.startswith("checkout.session."):
        work = _checkout_work(context, _dict(api.checkout.sessions.retrieve(obj["id"])))
    elif event_type.startswith("payment_intent."):
        work = _intent_work(context, _dict(api.payment_intents.retrieve(obj["id"])))
    else:
        work = _refund_work(_dict(api.charges.retrieve(obj["id"])))

    def apply(session: Any) -> str:
        if not pay.mark_event(session, event_id, event_type):
            return "duplicate"
        if work is not None:
            work(session)
        return "processed"

    return transaction(context.sessions, apply)


def _checkout_work(context: AppContext, session_obj: dict[str, Any]) -> Any:
    account_id = _account_of(session_obj)
    if account_id is None:
        return None
    customer_id = _id(session_obj.get("customer"))
    if not _owned(context, account_id, customer_id):
        return None
    if session_obj.get("mode") == "setup":
        if session_obj.get("status") != "complete":
            return None
        setup = _dict(client(context).v1.setup_intents.retrieve(_id(session_obj["setup_intent"])))
        method = _id(setup.get("payment_method"))
        if setup.get("status") == "succeeded" and method and customer_id:
            save_payment_method(context, account_id, customer_id, method)
        return None
    if session_obj.get("payment_status") != "paid":
        return None
    intent_id = _id(session_obj.get("payment_intent"))
    if intent_id and customer_id:
        intent = _dict(client(context).v1.payment_intents.retrieve(intent_id))
        method = _id(intent.get("payment_method"))
        if method:
            _save_card_quietly(context, account_id, customer_id, method)
    meta = session_obj.get("metadata") or {}
    topup_id = meta.get("creditbot_topup_id")

    def work(session: Any) -> pay.PaymentResult:
        return pay.record_payment(
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

    return work


def _save_card_quietly(context: AppContext, account_id: int, customer_id: str, method: str) -> None:
    """A paid top-up saved its card for later: it becomes the card auto-recharge uses."""
    try:
        save_payment_method(context, account_id, customer_id, method)
    except (stripe.StripeError, LedgerError) as exc:
        log.warning("card of account %s not saved: %s", account_id, exc)


def _intent_work(context: AppContext, intent: dict[str, Any]) -> Any:
    account_id = _account_of(intent)
    if account_id is None:
        return None
    if not _owned(context, account_id, _id(intent.get("customer"))):
        return None
    meta = intent.get("metadata") or {}
    kind = meta.get("creditbot_kind")
    outcome = _intent_outcome(intent)
    if kind == "auto_recharge" and str(meta.get("creditbot_recharge_id", "")).isdigit():
        recharge_id = int(meta["creditbot_recharge_id"])
        if outcome.status == "succeeded":
            return lambda s: pay.recharge_succeeded(
                s,
                recharge_id,
                payment_intent_id=intent["id"],
                amount_minor=int(intent.get("amount_received") or intent["amount"]),
                currency=intent["currency"],
            )
        if outcome.status == "failed":
            key = transaction(
                context.sessions, lambda s: pay.get_recharge(s, recharge_id).idempotency_key
            )
            return lambda s: pay.recharge_failed(
                s,
                recharge_id,
                reason=outcome.reason or "card_declined",
                decline_code=outcome.decline_code,
                message=outcome.message,
                fix_url=fix_link_base(context) + key,
                payment_intent_id=intent["id"],
            )
        return None
    if kind in ("saved_card", "checkout") and outcome.status == "succeeded":
        method = _id(intent.get("payment_method"))
        if kind == "checkout" and method:  # its card was saved for later: use it
            _save_card_quietly(context, account_id, _id(intent.get("customer")) or "", method)
        topup_id = meta.get("creditbot_topup_id")
        return lambda s: pay.record_payment(
            s,
            account_id,
            amount_minor=int(intent.get("amount_received") or intent["amount"]),
            currency=intent["currency"],
            payment_intent_id=intent["id"],
            topup_id=int(topup_id) if topup_id else None,
            source=kind,
            requested_by=meta.get("creditbot_user"),
        )
    return None


def _refund_work(charge: dict[str, Any]) -> Any:
    intent_id = _id(charge.get("payment_intent"))
    if not intent_id:
        return None
    return lambda s: pay.record_refund(
        s,
        payment_intent_id=intent_id,
        charge_id=charge["id"],
        amount_refunded_minor=int(charge.get("amount_refunded") or 0),
    )


def _recent(listing: Any, since: int) -> list[dict[str, Any]]:
    """Objects of a Stripe list created since `since` (Stripe lists newest first)."""
    found = []
    for item in listing.auto_paging_iter():
        data = _dict(item)
        if int(data.get("created") or 0) < since:
            break
        found.append(data)
    return found


def reconcile(context: AppContext, *, since: datetime | None = None) -> int:
    """Credit paid Checkout Sessions and succeeded PaymentIntents whose webhook never came.
    Returns how many payments were credited now; 0 when Stripe is not configured."""
    if not context.settings.stripe_secret_key:
        return 0
    since_ts = int((since or utcnow() - RECONCILE_WINDOW).timestamp())
    api = client(context).v1
    credited = 0
    for session_obj in _recent(api.checkout.sessions.list(params={"limit": 100}), since_ts):
        if session_obj.get("mode") != "payment" or session_obj.get("payment_status") != "paid":
            continue
        if _account_of(session_obj) is None or _known(context, None, session_obj["id"]):
            continue
        work = _checkout_work(context, session_obj)
        if work is not None:
            credited += _credited(context, work)
    for intent in _recent(api.payment_intents.list(params={"limit": 100}), since_ts):
        if intent.get("status") != "succeeded" or _account_of(intent) is None:
            continue
        if _known(context, intent["id"], None):
            continue
        work = _intent_work(context, intent)
        if work is not None:
            credited += _credited(context, work)
    return credited


def _known(context: AppContext, intent_id: str | None, session_id: str | None) -> bool:
    return transaction(
        context.sessions,
        lambda s: pay.payment_recorded(
            s, payment_intent_id=intent_id, checkout_session_id=session_id
        ),
    )


def _credited(context: AppContext, work: Any) -> int:
    try:
        result = transaction(context.sessions, work)
    except LedgerError as exc:
        log.warning("reconciliation could not record a payment: %s", exc)
        return 0
    return 1 if isinstance(result, pay.PaymentResult) and not result.replayed else 0
