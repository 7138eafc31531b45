"""The usage rollup: what each agent used, per local day, unit and source.

Written by the journal's gate in the transaction of each usage posting (a charge adds, a
refund subtracts from the day of the charge it refunds), so queries over any range answer
from a few rows per day instead of scanning the journal. `ledger verify` checks it.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ledger.models.base import Base


class UsageDay(Base):
    """Usage of one agent on one local day (account time zone) in one unit."""

    __tablename__ = "usage_days"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity"),
        CheckConstraint("from_plan >= 0 AND from_wallet >= 0", name="amounts"),
    )

    # Key order serves the range query: one account, a span of days.
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), primary_key=True)
    unit: Mapped[str] = mapped_column(String(16), primary_key=True)
    #: Units charged (messages, call minutes started); refunds leave it.
    quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Milli-credits used from each source, net of refunds.
    from_plan: Mapped[int] = mapped_column(BigInteger, default=0)
    from_wallet: Mapped[int] = mapped_column(BigInteger, default=0)


__all__ = ["UsageDay"]
