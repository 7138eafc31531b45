""" "Recovered" alerts (rule 10): a low balance lifted back above every one of its alert
levels, said once after the low alert that fired. Each writer that gives credits back --
a wallet credit, a refund, a renewal -- calls `note_recovery` under the account lock, after
posting; the rule itself is in the policy (`plan_recovered`, `wallet_recovered`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ledger import outbox, policy
from ledger.models import Account
from ledger.outbox import Alert


def note_recovery(
    session: Session, account: Account, now: datetime, *, announce_plan: bool = True
) -> None:
    """Alert each balance that recovered and re-arm its low alerts. `announce_plan=False`
    (a renewal, whose own alert says the plan is full again) re-arms without an alert."""
    if policy.plan_recovered(
        account.plan_alert_levels, account.plan_grant, account.plan_balance,
        account.plan_low_alerted,
    ):  # fmt: skip
        account.plan_low_alerted = False
        if announce_plan:
            outbox.add(
                session,
                account.id,
                Alert.PLAN_RECOVERED,
                {"plan_balance": account.plan_balance, "plan_grant": account.plan_grant},
                now=now,
            )
    if policy.wallet_recovered(
        account.wallet_alert_levels, account.wallet_balance, account.wallet_low_alerted
    ):
        account.wallet_low_alerted = False
        outbox.add(
            session,
            account.id,
            Alert.WALLET_RECOVERED,
            {"wallet_balance": account.wallet_balance},
            now=now,
        )
    session.flush()
