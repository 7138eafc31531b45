"""The data `/balance` and the App Home tab show, read from the ledger in one transaction:
balances and agents (and the budget they share), auto-recharge settings and what a
recharge would cost now, the saved card, the last recharge attempt, the last 30 days of
usage, the alert levels and the latest settings changes.
The Block Kit that shows it is built in blocks/dashboard.py."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy.orm import Session

from bot.context import AppContext
from bot.usage_links import chart_url
from bot.usage_summary import UsageSummary, read_usage_summary
from ledger import recharges, stripe_records
from ledger.accounts import BalanceView, balance
from ledger.alert_levels import AlertLevels, alert_levels
from ledger.audit import AuditView, list_events
from ledger.auto_recharge import (
    AutoRecharge,
    RechargeAmount,
    auto_recharge,
    month_recharged,
    recharge_amount,
)
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.forecast import Forecast, forecast
from ledger.models import Account

#: Settings changes the Home tab lists.
RECENT_CHANGES = 5


@dataclass(frozen=True)
class Card:
    brand: str
    last4: str

    @property
    def label(self) -> str:
        return f"{self.brand.title()} •••• {self.last4}"


@dataclass(frozen=True)
class RechargeAttempt:
    at: datetime | None
    status: str
    amount_minor: int | None
    reason: str | None
    message: str | None
    fix_url: str | None


@dataclass(frozen=True)
class Dashboard:
    balance: BalanceView
    timezone: str
    auto: AutoRecharge
    card: Card | None
    last_attempt: RechargeAttempt | None
    forecast: Forecast
    alert_channel: str | None
    billing_admins: list[str]
    topup_min_minor: int
    topup_max_minor: int
    now: datetime
    #: The usage section: the last 30 days, and the signed link of their chart (None when
    #: Slack could not fetch it).
    usage: UsageSummary | None = None
    chart_url: str | None = None
    #: What a recharge would charge right now (the auto-recharge modal shows it).
    recharge_now: RechargeAmount | None = None
    levels: AlertLevels | None = None
    #: The latest settings changes (the Home tab shows them).
    changes: list[AuditView] = field(default_factory=list)

    @property
    def currency(self) -> str:
        return self.balance.currency


def saved_card(session: Session, account_id: int) -> Card | None:
    """The card saved for off-session payments; none once it is detached."""
    customer = stripe_records.stripe_customer(session, account_id)
    if customer is None or not customer.card_last4 or not customer.payment_method_id:
        return None
    return Card(brand=customer.card_brand or "card", last4=customer.card_last4)


def last_recharge(session: Session, account_id: int) -> RechargeAttempt | None:
    """The latest auto-recharge attempt and how it ended."""
    recharge = recharges.last_recharge(session, account_id)
    if recharge is None:
        return None
    return RechargeAttempt(
        at=recharge.finished_at or recharge.created_at,
        status=recharge.status,
        amount_minor=recharge.amount_minor,
        reason=recharge.reason,
        message=recharge.message,
        fix_url=recharge.fix_url,
    )


def card_of(context: AppContext, account_id: int) -> Card | None:
    """The saved card, read on its own (the top-up offer and the settings answers)."""
    return transaction(context.sessions, lambda s: saved_card(s, account_id))


def load_dashboard(
    context: AppContext, account_id: int, *, now: datetime | None = None
) -> Dashboard:
    """One read of the account for `/balance` and the Home tab."""
    now = now or utcnow()

    def read(session: Session) -> Dashboard:
        account = session.get(Account, account_id)
        usage = read_usage_summary(session, account_id, now=now)
        return Dashboard(
            balance=balance(session, account_id, now=now),
            timezone=account.timezone,
            auto=auto_recharge(account),
            card=saved_card(session, account_id),
            last_attempt=last_recharge(session, account_id),
            forecast=forecast(session, account_id, now=now),
            alert_channel=account.alert_channel_id or context.settings.slack_alert_channel or None,
            billing_admins=list(account.billing_admins or []),
            topup_min_minor=account.topup_min_minor,
            topup_max_minor=account.topup_max_minor,
            now=now,
            usage=usage,
            recharge_now=recharge_amount(account, month_recharged(session, account, now)),
            levels=alert_levels(account),
            changes=list_events(session, account_id, limit=RECENT_CHANGES),
        )

    dashboard = transaction(context.sessions, read)
    # Signing may read the server's secret: in a transaction of its own, after this one.
    url = chart_url(context, account_id, dashboard.usage.end, now=now)  # type: ignore[union-attr]
    return replace(dashboard, chart_url=url)
