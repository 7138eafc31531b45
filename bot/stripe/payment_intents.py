"""What a PaymentIntent means for the ledger, in one place.

Three things report a PaymentIntent: the direct answer of an off-session charge (a
recharge or a one-click top-up), the webhook, and reconciliation. Each classifies what
Stripe said (`ChargeOutcome`), knows what creditbot made the intent for (`IntentPurpose`)
and records it with `apply_payment_intent`, so a payment is credited, failed or retried
the same way whichever reports it first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.stripe.client import account_of
from ledger.recharges import recharge_failed, recharge_retry_later, recharge_succeeded
from ledger.topups import PaymentResult, record_payment


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


def intent_outcome(intent: dict[str, Any]) -> ChargeOutcome:
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
class IntentPurpose:
    """What creditbot made a PaymentIntent for: an auto-recharge attempt, or a top-up
    (`kind` 'saved_card' or 'checkout') asked for by `requested_by`."""

    account_id: int
    kind: str
    recharge_id: int | None = None
    topup_id: int | None = None
    requested_by: str | None = None
    #: The key of the request that asked for it (a saved-card top-up), when known.
    idempotency_key: str | None = None


def purpose_of(intent: dict[str, Any]) -> IntentPurpose | None:
    """The purpose creditbot wrote into the intent's metadata; None for an intent that is
    not creditbot's, or not one it acts on."""
    account_id = account_of(intent)
    if account_id is None:
        return None
    meta = intent.get("metadata") or {}
    kind = meta.get("creditbot_kind")
    if kind == "auto_recharge":
        recharge = str(meta.get("creditbot_recharge_id", ""))
        if not recharge.isdigit():
            return None
        return IntentPurpose(account_id, kind, recharge_id=int(recharge))
    if kind in ("saved_card", "checkout"):
        topup = meta.get("creditbot_topup_id")
        return IntentPurpose(
            account_id,
            kind,
            topup_id=int(topup) if topup else None,
            requested_by=meta.get("creditbot_user"),
        )
    return None


def _amount(intent: dict[str, Any]) -> int:
    return int(intent.get("amount_received") or intent["amount"])


def apply_payment_intent(
    session: Session,
    purpose: IntentPurpose,
    outcome: ChargeOutcome,
    *,
    fix_link_base: str,
    now: datetime | None = None,
) -> PaymentResult | None:
    """Record `outcome` in the caller's transaction: a recharge succeeds, fails (with a fix
    link) or is retried later; a top-up is credited once it succeeded. Returns the payment
    when this call credited or found it credited, else None."""
    intent = outcome.payment_intent
    if purpose.recharge_id is not None:
        if outcome.status == "succeeded":
            return recharge_succeeded(
                session,
                purpose.recharge_id,
                payment_intent_id=intent["id"],
                amount_minor=_amount(intent),
                currency=intent["currency"],
                now=now,
            )
        if outcome.status == "failed":
            recharge_failed(
                session,
                purpose.recharge_id,
                reason=outcome.reason or "card_declined",
                decline_code=outcome.decline_code,
                message=outcome.message,
                fix_link_base=fix_link_base,
                payment_intent_id=outcome.payment_intent_id,
                now=now,
            )
        elif outcome.status == "retry":
            recharge_retry_later(session, purpose.recharge_id, outcome.message or "", now=now)
        # 'processing': the attempt stays pending; its webhook or the next claim finishes it.
        return None
    if outcome.status != "succeeded":
        return None
    return record_payment(
        session,
        purpose.account_id,
        amount_minor=_amount(intent),
        currency=intent["currency"],
        payment_intent_id=intent["id"],
        topup_id=purpose.topup_id,
        source=purpose.kind,
        requested_by=purpose.requested_by,
        idempotency_key=purpose.idempotency_key,
        now=now,
    )
