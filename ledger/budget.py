"""The account's monthly budget: one cap on what all its agents together spend in a
calendar month (account time zone), plan credits and wallet credits alike.

The rule itself is the policy's (`ledger/policy.py`: a charge the budget cannot cover is
refused with `account_budget`, the charge that uses it up stops every agent); the month's
spend is kept on the account by the journal with each charge, so the charge's one locked
read sees it. Here: reading it, and setting it -- which resumes the agents it held when it
is raised or removed, and stops them when it is lowered under what was already spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import audit, outbox, policy
from ledger.agent_status import budget_left, resume_agents, stop_for_budget
from ledger.agents import parse_limit
from ledger.audit import Actor
from ledger.cycles import month_key, utcnow
from ledger.errors import FieldError, InvalidInput, UnknownAccount
from ledger.journal import lock_account
from ledger.models import Account, Agent
from ledger.outbox import Alert

#: Largest budget, in milli-credits (a thousand billion credits): bigger is a typo.
MAX_BUDGET = 10**15


def parse_budget(text: str | None) -> int | None:
    """A budget typed by a person, in whole credits, as milli-credits; blank or 'none' is no
    budget. The same rule (and parser) as an agent's monthly limit."""
    raw = (text or "").strip()
    if not raw or raw.lower() in ("none", "no budget"):
        return None
    try:
        return parse_limit(raw)
    except InvalidInput as exc:
        raise FieldError(
            "budget",
            f"{text!r} is not a budget: enter a whole number of credits above 0,"
            " or leave it blank for none.",
        ) from exc


def check_budget(budget: int | None) -> int | None:
    if budget is not None and (
        not isinstance(budget, int) or isinstance(budget, bool) or not 0 < budget <= MAX_BUDGET
    ):
        raise FieldError(
            "budget", "A monthly budget is a whole positive number of credits, or none."
        )
    return budget


@dataclass(frozen=True)
class BudgetView:
    """The budget as a person sees it. Credits are milli-credits."""

    monthly_budget: int | None
    month: str
    #: What every agent spent this month, from both sources.
    month_spend: int
    #: What the budget still allows this month (None: no budget).
    left: int | None
    #: Agents stopped for `account_budget`.
    agents_stopped: int

    @property
    def reached(self) -> bool:
        return self.left is not None and self.left <= 0


def _view(session: Session, account: Account, now: datetime) -> BudgetView:
    month = month_key(now, account.timezone)
    stopped = session.execute(
        select(func.count()).where(
            Agent.account_id == account.id, Agent.stop_reason == "account_budget"
        )
    ).scalar_one()
    return BudgetView(
        monthly_budget=account.monthly_budget,
        month=month,
        month_spend=policy.spend_in(month, account.account_month, account.account_month_spend),
        left=budget_left(account, month),
        agents_stopped=stopped,
    )


def budget_view(session: Session, account_id: int, *, now: datetime | None = None) -> BudgetView:
    account = session.get(Account, account_id)
    if account is None:
        raise UnknownAccount(f"No account {account_id}.")
    return _view(session, account, now or utcnow())


def set_budget(
    session: Session,
    account_id: int,
    monthly_budget: int | None,
    *,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> BudgetView:
    """Set (or with None remove) the account's monthly budget, in milli-credits.

    Room in the budget resumes the agents it stopped (those that can pay); a budget at or
    under what was already spent this month stops every agent, with the budget alert.
    """
    now = now or utcnow()
    check_budget(monthly_budget)
    account = lock_account(session, account_id)
    before = account.monthly_budget
    month = month_key(now, account.timezone)
    was_left = budget_left(account, month)
    was_reached = was_left is not None and was_left <= 0
    account.monthly_budget = monthly_budget
    audit.record(
        session, account_id, actor, "budget",
        {"monthly_budget": before}, {"monthly_budget": monthly_budget}, now=now,
    )  # fmt: skip
    left = budget_left(account, month)
    if left is not None and left <= 0:
        if not was_reached:
            stop_for_budget(session, account_id, now)
            spent = policy.spend_in(month, account.account_month, account.account_month_spend)
            outbox.add(
                session, account_id, Alert.BUDGET_REACHED,
                {"month_spend": spent, "budget": monthly_budget}, now=now,
            )  # fmt: skip
    else:
        resume_agents(session, account, now, "budget", reasons=("account_budget",))
    session.flush()
    return _view(session, account, now)
