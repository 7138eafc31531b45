"""Stripe: the only package that imports `stripe`; money and credits are recorded through
the ledger (`ledger.topups`, `ledger.recharges`, `ledger.stripe_records`).

- `client`: the StripeClient (secret key, pinned API version, `STRIPE_API_BASE`);
- `customers`: each account's Stripe customer and saved card;
- `checkout`: Checkout pages for top-ups and for saving a card;
- `recharges`: off-session charges: auto-recharge attempts and one-click top-ups;
- `payment_intents`: what a PaymentIntent means for the ledger, shared by the direct
  answer of a charge, the webhook and reconciliation;
- `webhooks`: verified events, each processed once;
- `reconcile`: payments and refunds whose webhook never came;
- `portal`: Stripe's Customer Portal (Manage card).

The names below are what the other adapters (Slack, HTTP, CLI, scheduler) call; they look
them up on this package at call time, so a test can replace one here.
"""

from bot.stripe.checkout import (
    CheckoutPage,
    create_card_checkout,
    create_fix_checkout,
    create_topup_checkout,
    open_topup_checkout,
)
from bot.stripe.client import StripeFailed
from bot.stripe.portal import create_portal_session
from bot.stripe.recharges import (
    RechargeRun,
    SavedCardCharge,
    charge_saved_card,
    process_recharge_requests,
    recharge_now,
    sweep_auto_recharge,
)
from bot.stripe.reconcile import reconcile_payments, reconcile_refunds
from bot.stripe.webhooks import handle_event

__all__ = [
    "CheckoutPage",
    "RechargeRun",
    "SavedCardCharge",
    "StripeFailed",
    "charge_saved_card",
    "create_card_checkout",
    "create_fix_checkout",
    "create_portal_session",
    "create_topup_checkout",
    "handle_event",
    "open_topup_checkout",
    "process_recharge_requests",
    "reconcile_payments",
    "reconcile_refunds",
    "recharge_now",
    "sweep_auto_recharge",
]
