"""The saved card and the last recharge attempt come from the payments part's tables;
they are read defensively: absent tables or rows mean "no saved card", never an error.

Where the payments part's models are present (after merging it), the test writes into
its real tables; otherwise into stand-ins with the columns the Slack app reads.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import BigInteger, Boolean, Column, Integer, MetaData, String, Table, Text

from bot.context import build_context
from bot.slack import blocks, dashboard
from bot.slack.dashboard import load_dashboard
from ledger.models import Base
from ledger.models.base import UTCDateTime
from tests.support.factories import story
from tests.support.slack_harness import *  # noqa: F403
from tests.support.slack_harness import settings_for


def _stand_ins(prefix: str = "") -> MetaData:
    metadata = MetaData()
    Table(
        f"{prefix}stripe_customers", metadata,
        Column("account_id", Integer, primary_key=True), Column("customer_id", String(64)),
        Column("payment_method_id", String(64)), Column("card_brand", String(32)), Column("card_last4", String(4)),
    )  # fmt: skip
    Table(
        f"{prefix}recharges", metadata,
        Column("id", Integer, primary_key=True), Column("account_id", Integer), Column("status", String(16)),
        Column("amount_minor", BigInteger), Column("reason", String(40)), Column("message", Text),
        Column("fix_url", Text), Column("created_at", UTCDateTime), Column("finished_at", UTCDateTime),
        Column("paused_auto_recharge", Boolean),
    )  # fmt: skip
    return metadata


def _row(table: Table, **values: object) -> dict[str, object]:
    """Only the columns this table has (the real tables have more, required, columns)."""
    return {k: v for k, v in values.items() if k in table.c}


@pytest.fixture
def ctx(db_url, fake_slack):
    context = build_context(settings_for(db_url, fake_slack))
    yield context
    context.engine.dispose()


def test_card_and_last_attempt_from_the_payments_tables(ctx, monkeypatch):
    ids = story(ctx.sessions)
    if "stripe_customers" in Base.metadata.tables and "recharges" in Base.metadata.tables:
        customers, recharges = (
            Base.metadata.tables["stripe_customers"],
            Base.metadata.tables["recharges"],
        )
    else:
        stand_ins = _stand_ins()
        stand_ins.create_all(ctx.engine)
        monkeypatch.setattr(dashboard, "_table", lambda name: stand_ins.tables.get(name))
        customers, recharges = stand_ins.tables["stripe_customers"], stand_ins.tables["recharges"]
    at = datetime(2026, 11, 20, 9, tzinfo=UTC)
    with ctx.engine.begin() as conn:
        conn.execute(customers.insert().values(**_row(
            customers, account_id=ids["account"], customer_id="cus_1", payment_method_id="pm_1",
            card_brand="visa", card_last4="4242", card_saved_at=at, created_at=at)))  # fmt: skip
        conn.execute(recharges.insert().values(**_row(
            recharges, account_id=ids["account"], idempotency_key="r1", status="failed", trigger="sweep",
            amount_minor=2500, currency="USD", reason="authentication_required", tries=1, created_at=at,
            finished_at=at, paused_auto_recharge=False)))  # fmt: skip
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
    absent = _stand_ins(prefix="absent_")
    monkeypatch.setattr(dashboard, "_table", lambda name: absent.tables.get(f"absent_{name}"))
    board = load_dashboard(ctx, ids["account"], now=datetime.now(UTC))
    assert board.card is None and board.last_attempt is None
    assert board.balance.wallet_balance == 500_000  # the rest of the read went on
