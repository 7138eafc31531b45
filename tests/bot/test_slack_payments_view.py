"""The saved card and the last recharge attempt come from the payments tables, through the
ledger's functions: no card saved (or a detached one) and no attempt yet read as none."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.context import build_context
from bot.slack import blocks
from bot.slack.dashboard_data import load_dashboard
from ledger import stripe_records
from ledger.db import transaction
from ledger.models.payments import Recharge, StripeCustomer
from tests.support.factories import story
from tests.support.slack_harness import *  # noqa: F403
from tests.support.slack_harness import settings_for


@pytest.fixture
def ctx(db_url, fake_slack):
    context = build_context(settings_for(db_url, fake_slack))
    yield context
    context.engine.dispose()


def test_card_and_last_attempt_from_the_payments_tables(ctx):
    ids = story(ctx.sessions)
    at = datetime(2026, 11, 20, 9, tzinfo=UTC)
    with ctx.engine.begin() as conn:
        conn.execute(StripeCustomer.__table__.insert().values(
            account_id=ids["account"], customer_id="cus_1", payment_method_id="pm_1",
            card_brand="visa", card_last4="4242", card_saved_at=at, created_at=at))  # fmt: skip
        conn.execute(Recharge.__table__.insert().values(
            account_id=ids["account"], idempotency_key="r1", status="failed", trigger="sweep",
            amount_minor=2500, currency="USD", reason="authentication_required", tries=1, created_at=at,
            finished_at=at, paused_auto_recharge=False))  # fmt: skip
    text = blocks.auto_recharge_text(load_dashboard(ctx, ids["account"]))
    assert "Card: Visa •••• 4242" in text
    assert (
        "Last attempt of $25.00: 20 Nov 2026, failed: the bank asks the cardholder to authenticate the payment"
        in text
    )

    with ctx.engine.begin() as conn:  # the card was detached
        conn.execute(StripeCustomer.__table__.update().values(payment_method_id=None))
    assert "Card: no saved card" in blocks.auto_recharge_text(load_dashboard(ctx, ids["account"]))


def test_no_card_and_no_attempt_yet_mean_none(ctx):
    ids = story(ctx.sessions)
    board = load_dashboard(ctx, ids["account"], now=datetime.now(UTC))
    assert board.card is None and board.last_attempt is None
    assert board.balance.wallet_balance == 500_000  # the rest of the read went on
    # a Stripe customer exists (a Checkout page was opened) but no card was saved
    transaction(ctx.sessions, lambda s: stripe_records.save_customer(s, ids["account"], "cus_2"))
    board = load_dashboard(ctx, ids["account"], now=datetime.now(UTC))
    assert board.card is None and board.last_attempt is None
