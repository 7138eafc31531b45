"""Everything `/balance` and the App Home tab show, read from the ledger in one go."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.context import AppContext
from ledger.accounts import BalanceView, balance
from ledger.auto_recharge import AutoRecharge, auto_recharge
from ledger.db import transaction
from ledger.forecast import Forecast, forecast
from ledger.models import Account, Base


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

    @property
    def currency(self) -> str:
        return self.balance.currency


def _table(name: str):  # noqa: ANN202 - a Table or None
    return Base.metadata.tables.get(name)


def saved_card(session: Session, account_id: int) -> Card | None:
    """The account's saved card, from the payments part's `stripe_customers` table.

    Read defensively: until that table exists (or when it holds no card) there is none.
    """
    table = _table("stripe_customers")
    if table is None or "card_last4" not in table.c or "account_id" not in table.c:
        return None
    try:
        with session.begin_nested():
            row = session.execute(
                select(table).where(table.c.account_id == account_id).limit(1)
            ).first()
    except SQLAlchemyError:
        return None
    if row is None:
        return None
    data = row._mapping
    last4 = data.get("card_last4")
    if not last4 or ("payment_method_id" in data and not data.get("payment_method_id")):
        return None
    return Card(brand=str(data.get("card_brand") or "card"), last4=str(last4))


def last_recharge(session: Session, account_id: int) -> RechargeAttempt | None:
    """The latest auto-recharge attempt, from the payments part's `recharges` table."""
    table = _table("recharges")
    if table is None or "account_id" not in table.c or "status" not in table.c:
        return None
    order = table.c.id if "id" in table.c else table.c.created_at
    try:
        with session.begin_nested():
            row = session.execute(
                select(table)
                .where(table.c.account_id == account_id)
                .order_by(order.desc())
                .limit(1)
            ).first()
    except SQLAlchemyError:
        return None
    if row is None:
        return None
    data = row._mapping
    return RechargeAttempt(
        at=data.get("finished_at") or data.get("created_at"),
        status=str(data.get("status")),
        amount_minor=data.get("amount_minor"),
        reason=data.get("reason"),
        message=data.get("message"),
        fix_url=data.get("fix_url"),
    )


def load_dashboard(
    context: AppContext, account_id: int, *, now: datetime | None = None
) -> Dashboard:
    """One read of the account for `/balance` and the Home tab."""
    from ledger.cycles import utcnow

    now = now or utcnow()

    def read(session: Session) -> Dashboard:
        account = session.get(Account, account_id)
        view = balance(session, account_id, now=now)
        return Dashboard(
            balance=view,
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
        )

    return transaction(context.sessions, read)
