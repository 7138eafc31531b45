"""The saved card and the last recharge attempt come from the payments part's tables;
they are read defensively: absent tables or rows mean "no saved card", never an error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table, Text

from bot.context import build_context
from bot.slack import blocks, dashboard
from bot.slack.dashboard import load_dashboard
from tests.bot.slack_harness import *  # noqa: F403
from tests.bot.slack_harness import settings_for
from tests.factories import story

metadata = MetaData()
customers = Table(
    "stripe_customers", metadata,
    Column("account_id", Integer, primary_key=True), Column("customer_id", String(64)),
    Column("payment_method_id", String(64)), Column("card_brand", String(32)), Column("card_last4", String(4)),
)  # fmt: skip
recharges = Table(
    "recharges", metadata,
    Column("id", Integer, primary_key=True), Column("account_id", Integer), Column("status", String(16)),
    Column("amount_minor", BigInteger), Column("reason", String(40)), Column("message", Text),
    Column("fix_url", Text), Column("created_at", DateTime), Column("finished_at", DateTime),
)  # fmt: skip


@pytest.fixture
def ctx(db_url, fake_slack):
    context = build_context(settings_for(db_url, fake_slack))
    yield context
    context.engine.dispose()


def test_card_and_last_attempt_from_the_payments_tables(ctx, monkeypatch):
    ids = story(ctx.sessions)
    metadata.create_all(ctx.engine)
    monkeypatch.setattr(dashboard, "_table", lambda name: metadata.tables.get(name))
    with ctx.engine.begin() as conn:
        conn.execute(customers.insert().values(account_id=ids["account"], customer_id="cus_1",
                                               payment_method_id="pm_1", card_brand="visa", card_last4="4242"))  # fmt: skip
        conn.execute(recharges.insert().values(account_id=ids["account"], status="failed", amount_minor=2500,
                                               reason="authentication_required", created_at=datetime(2026, 11, 20, 9),
                                               finished_at=datetime(2026, 11, 20, 9, 1)))  # fmt: skip
    text = blocks.auto_recharge_text(load_dashboard(ctx, ids["account"]))
    assert "Card: Visa •••• 4242" in text
    assert (
        "Last attempt of $25.00: 20 Nov 2026, failed: the bank asks the cardholder to authenticate the payment"
        in text
    )

    with ctx.engine.begin() as conn:  # the card was detached
        conn.execute(customers.update().values(payment_method_id=None))
    assert "Card: no saved card" in blocks.auto_recharge_text(load_dashboard(ctx, ids["account"]))


def test_missing_payments_tables_mean_no_card(ctx, monkeypatch):
    ids = story(ctx.sessions)
    # declared but never created in the database: the read fails inside a savepoint
    monkeypatch.setattr(dashboard, "_table", lambda name: metadata.tables.get(name))
    board = load_dashboard(ctx, ids["account"], now=datetime.now(UTC))
    assert board.card is None and board.last_attempt is None
    assert board.balance.wallet_balance == 500_000  # the rest of the read went on
