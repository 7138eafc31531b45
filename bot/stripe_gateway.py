"""Stripe: Checkout for top-ups and cards, off-session PaymentIntents for recharges and
one-click top-ups, the webhook's work and reconciliation. The only module that imports
`stripe`; money and credits are recorded through the ledger."""

from __future__ import annotations

from bot.context import AppContext


def create_topup_checkout(
    context: AppContext, account_id: int, amount_minor: int, user_id: str
) -> str:
    """A Stripe Checkout page (payment mode, saves the card) for a top-up; returns its URL."""
    raise NotImplementedError


def create_card_checkout(context: AppContext, account_id: int, user_id: str) -> str:
    """A Stripe Checkout page in setup mode that adds or replaces the saved card."""
    raise NotImplementedError


def charge_saved_card(
    context: AppContext, account_id: int, amount_minor: int, idempotency_key: str, user_id: str
) -> object:
    """A one-click top-up with the saved card (off-session PaymentIntent)."""
    raise NotImplementedError


def process_recharge_requests(context: AppContext) -> int:
    """Act on `recharge.requested` outbox messages written by charges; returns how many."""
    return 0


def sweep_auto_recharge(context: AppContext) -> int:
    """Start a recharge for every account whose wallet sits under its threshold."""
    return 0


def reconcile(context: AppContext) -> int:
    """Credit paid Checkout Sessions and succeeded PaymentIntents whose webhook never came."""
    return 0
