"""What the ledger keeps of Stripe: each Stripe event id is processed once."""

from __future__ import annotations

from ledger.db import transaction
from ledger.stripe_records import mark_event


def test_each_stripe_event_is_processed_once(sessions):
    assert transaction(sessions, lambda s: mark_event(s, "evt_1", "payment_intent.succeeded"))
    assert not transaction(sessions, lambda s: mark_event(s, "evt_1", "payment_intent.succeeded"))
