"""Charge snapshots for the policy's tests: one built by hand, and a hypothesis strategy
that draws any state an agent and its account can be in."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from ledger.models import STOP_REASONS
from ledger.policy import Snapshot
from ledger.units import credits

MONTH = "2026-11"
NEXT_MONTH = "2026-12"


def snapshot(**changes: Any) -> Snapshot:
    """An active `stop` agent without a limit on an account with 1,000 plan credits of a
    1,000 grant and an empty wallet, auto-recharge off; `changes` override any field."""
    base = Snapshot(
        agent_id=7,
        agent_name="A",
        status="active",
        stop_reason=None,
        behaviour="stop",
        monthly_limit=None,
        month=MONTH,
        month_spend=0,
        plan_balance=credits(1000),
        wallet_balance=0,
        plan_grant=credits(1000),
        message_rate=credits(1),
        call_minute_rate=credits(10),
        timezone="UTC",
        plan_alert_levels="20",
        wallet_alert_levels=str(credits(1000)),
        limit_alert_levels="80,100",
        budget_alert_levels="80,100",
        plan_exhausted_alerted=False,
        plan_low_alerted=False,
        wallet_low_alerted=False,
        auto_recharge_enabled=False,
        auto_recharge_paused=False,
        auto_recharge_threshold_minor=0,
        recharge_requested=False,
        currency="USD",
        credits_per_unit=100,
        monthly_budget=None,
        account_month=MONTH,
        account_month_spend=0,
    )
    return base._replace(**changes)


_amounts = st.integers(0, credits(100))


#: Why an agent stops when its account has no budget.
AGENT_REASONS = tuple(r for r in STOP_REASONS if r != "account_budget")


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    """Any agent and account state, stopped or not, in this month or the last, with one
    alert level per balance and no budget (`budget_snapshots` adds those)."""
    stopped = draw(st.booleans())
    grant = draw(_amounts)
    return snapshot(
        status="stopped" if stopped else "active",
        stop_reason=draw(st.sampled_from(AGENT_REASONS)) if stopped else None,
        behaviour=draw(st.sampled_from(("stop", "use_balance"))),
        monthly_limit=draw(st.none() | st.integers(1, credits(100))),
        month=draw(st.sampled_from((MONTH, "2026-10"))),
        month_spend=draw(_amounts),
        plan_balance=draw(st.integers(0, grant)),
        wallet_balance=draw(_amounts),
        plan_grant=grant,
        plan_alert_levels=_one_level(draw(st.integers(0, 100))),
        wallet_alert_levels=_one_level(draw(_amounts)),
        plan_exhausted_alerted=draw(st.booleans()),
        auto_recharge_enabled=draw(st.booleans()),
        auto_recharge_paused=draw(st.booleans()),
        auto_recharge_threshold_minor=draw(st.integers(0, 100_000)),
        recharge_requested=draw(st.booleans()),
    )


def _one_level(level: int) -> str:
    """A single level as the account keeps it (0: none, as a threshold of 0 was)."""
    return str(level) if level > 0 else ""


def _levels(draw: st.DrawFn, values: st.SearchStrategy[int]) -> str:
    return ",".join(str(v) for v in draw(st.lists(values, max_size=4, unique=True)))


@st.composite
def budget_snapshots(draw: st.DrawFn) -> Snapshot:
    """`snapshots`, with a budget (or none), the account's month spend, several alert
    levels of each kind, and agents stopped for the budget too."""
    s = draw(snapshots())
    budget = draw(st.none() | st.integers(1, credits(200)))
    month = draw(st.sampled_from((MONTH, "2026-10")))
    stopped = s.status == "stopped" and draw(st.booleans())
    return s._replace(
        monthly_budget=budget,
        account_month=month,
        account_month_spend=draw(st.integers(0, credits(200))),
        stop_reason="account_budget" if stopped else s.stop_reason,
        plan_alert_levels=_levels(draw, st.integers(1, 100)),
        wallet_alert_levels=_levels(draw, st.integers(1, credits(100))),
        limit_alert_levels=_levels(draw, st.integers(1, 100)),
        budget_alert_levels=_levels(draw, st.integers(1, 100)),
    )


#: Prices of one charge: a message, a call minute, or odd amounts (per-second prices).
prices = st.integers(1, credits(30))


def after(s: Snapshot, d: Any) -> Snapshot:
    """The snapshot the next charge reads once decision `d` was posted and applied."""
    return s._replace(
        plan_balance=s.plan_balance - d.from_plan,
        wallet_balance=s.wallet_balance - d.from_wallet,
        month=d.month,
        month_spend=s.month_spend if d.month_spend is None else d.month_spend,
        status=s.status if d.change is None else d.change.status,
        stop_reason=s.stop_reason if d.change is None else d.change.reason,
        plan_exhausted_alerted=s.plan_exhausted_alerted or d.flag_plan_exhausted,
        recharge_requested=s.recharge_requested or d.request_recharge,
        account_month=d.month if d.account_spend is not None else s.account_month,
        account_month_spend=(s.account_month_spend if d.account_spend is None else d.account_spend),
        plan_low_alerted=s.plan_low_alerted or d.flag_plan_low,
        wallet_low_alerted=s.wallet_low_alerted or d.flag_wallet_low,
    )
