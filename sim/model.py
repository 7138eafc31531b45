"""A reference model of the brief's rules, written apart from the ledger (it imports none of
`ledger.policy`, `ledger.cycles` or the services) so that the two can disagree.

It keeps, per account, what the brief says the state is: plan credits and wallet, the
cycle, each agent's status, month and month spend, and which alerts have fired. The checker
(`sim.checker`) feeds it what the ledger committed, in commit order, and compares: the
model's decision for each charge, the alerts each change must raise (each once per
crossing), the agents' statuses, the balances.

Where the brief leaves a choice, the model takes the product's documented one (docs/api.md,
ledger/policy.py's docstrings): an agent with nothing left to spend stops at once rather
than on its next request; "plan exhausted" fires once per cycle, when a charge first finds
the plan short; the other thresholds fire when a charge crosses them and re-arm when the
balance is back above them.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

#: An alert as the model predicts it: its kind and what tells two of a kind apart.
Alert = tuple[object, ...]


class Violation(AssertionError):
    """The system did something the rules forbid. `invariant` names the rule."""

    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant
        self.detail = detail


def month_of(at: datetime, tz: str) -> str:
    local = at.astimezone(ZoneInfo(tz))
    return f"{local.year:04d}-{local.month:02d}"


def cycle_after(anchor: int, start: date) -> date:
    """The next cycle's first day: the anchor day of the next month, or its last day."""
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return date(year, month, min(anchor, calendar.monthrange(year, month)[1]))


def midnight(day: date, tz: str) -> datetime:
    """The first instant of `day` in `tz` (a midnight skipped by DST starts the day later)."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)


@dataclass
class AgentModel:
    id: int
    name: str
    behaviour: str
    limit: int | None
    month: str
    spend: int
    status: str = "active"
    reason: str | None = None

    def spend_in(self, month: str) -> int:
        return self.spend if self.month == month else 0


@dataclass
class AccountModel:
    id: int
    tz: str
    anchor: int
    plan_per_cycle: int
    plan_low_percent: int
    wallet_low: int
    plan: int
    wallet: int
    grant: int
    cycle_start: date
    exhausted_alerted: bool = False
    agents: dict[int, AgentModel] = field(default_factory=dict)

    @property
    def low_mark(self) -> int:
        return self.grant * self.plan_low_percent // 100

    # --- what an agent may spend ----------------------------------------------------------

    def plan_room(self, agent: AgentModel, month: str) -> int:
        if agent.limit is None:
            return self.plan
        return min(self.plan, max(0, agent.limit - agent.spend_in(month)))

    def room(self, agent: AgentModel, month: str) -> int:
        wallet = self.wallet if agent.behaviour == "use_balance" else 0
        return self.plan_room(agent, month) + wallet

    def why_short(self, agent: AgentModel, month: str, need: int) -> str:
        if agent.behaviour == "use_balance":
            return "wallet_empty"
        if agent.limit is not None and agent.limit - agent.spend_in(month) < need:
            return "monthly_limit"
        return "plan_exhausted"

    # --- rule 4: pay before work ----------------------------------------------------------

    def charge(
        self, agent_id: int, price: int, at: datetime
    ) -> tuple[str | None, int, int, list[Alert]]:
        """Decide and apply a charge: (refused reason or None, from plan, from wallet, alerts)."""
        agent = self.agents[agent_id]
        month = month_of(at, self.tz)
        alerts: list[Alert] = []
        new_month = agent.month != month
        if new_month:
            agent.month, agent.spend = month, 0
        reason = agent.reason if agent.status == "stopped" else None
        if reason == "monthly_limit" and new_month:
            reason = None
        from_plan = from_wallet = 0
        if reason is None:
            may = self.plan_room(agent, month)
            if agent.behaviour == "use_balance":
                from_plan = min(price, may)
                from_wallet = price - from_plan
                if from_wallet > self.wallet:
                    reason, from_plan, from_wallet = "wallet_empty", 0, 0
            elif price <= may:
                from_plan = price
            else:
                reason = self.why_short(agent, month, price)
            if self.plan < price and not self.exhausted_alerted:
                self.exhausted_alerted = True
                alerts.append(("plan_exhausted",))
        if reason is not None:
            if agent.status != "stopped" or agent.reason != reason:
                agent.status, agent.reason = "stopped", reason
                alerts.append(("agent_stopped", agent.id, reason))
            return reason, 0, 0, alerts
        if agent.status == "stopped":  # a new month cleared its limit
            alerts.append(("agent_resumed", agent.id, "new_month"))
            agent.status, agent.reason = "active", None
        plan_before, wallet_before, spend_before = self.plan, self.wallet, agent.spend
        self.plan -= from_plan
        self.wallet -= from_wallet
        agent.spend += price
        if from_plan and plan_before > self.low_mark >= self.plan:
            alerts.append(("plan_low",))
        if from_plan and self.plan == 0 and not self.exhausted_alerted:
            self.exhausted_alerted = True
            alerts.append(("plan_exhausted",))
        if from_wallet and wallet_before >= self.wallet_low > self.wallet:
            alerts.append(("wallet_low",))
        if agent.limit is not None:
            if spend_before * 5 < agent.limit * 4 <= agent.spend * 5:
                alerts.append(("limit_80", agent.id))
            if spend_before < agent.limit <= agent.spend:
                alerts.append(("limit_100", agent.id))
        if self.room(agent, month) == 0:
            agent.status, agent.reason = "stopped", self.why_short(agent, month, 1)
            alerts.append(("agent_stopped", agent.id, agent.reason))
        return None, from_plan, from_wallet, alerts

    # --- rule 6: resuming -----------------------------------------------------------------

    def resume(self, at: datetime, cause: str, reasons: tuple[str, ...],
               only: int | None = None) -> list[Alert]:  # fmt: skip
        month = month_of(at, self.tz)
        alerts: list[Alert] = []
        for agent in sorted(self.agents.values(), key=lambda a: a.id):
            if only is not None and agent.id != only:
                continue
            if agent.status != "stopped" or agent.reason not in reasons:
                continue
            if agent.month != month:
                agent.month, agent.spend = month, 0
            if self.room(agent, month) > 0:
                alerts.append(("agent_resumed", agent.id, cause))
                agent.status, agent.reason = "active", None
        return alerts

    def refund(self, agent_id: int | None, to_plan: int, to_wallet: int, charged_in: str,
               at: datetime) -> list[Alert]:  # fmt: skip
        self.plan += to_plan
        self.wallet += to_wallet
        agent = self.agents.get(agent_id) if agent_id is not None else None
        if agent is not None and agent.month == charged_in:
            agent.spend = max(0, agent.spend - to_plan - to_wallet)
        return self.resume(at, "refund", ("wallet_empty", "plan_exhausted"))

    def renew(self, cycle_start: date, expired: int, granted: int, at: datetime) -> list[Alert]:
        """A renewal the ledger posted: the next cycle by the calendar, at or after its local
        midnight, expiring exactly what was left and granting the plan."""
        expected = cycle_after(self.anchor, self.cycle_start)
        if cycle_start != expected:
            raise Violation(
                "renewal once per cycle",
                f"account {self.id} renewed the cycle starting {cycle_start} after the one "
                f"starting {self.cycle_start}; the next cycle starts {expected}",
            )
        if at < midnight(cycle_start, self.tz):
            raise Violation(
                "renewal once per cycle",
                f"account {self.id} renewed the cycle of {cycle_start} at {at:%Y-%m-%d %H:%M} UTC, "
                f"before local midnight ({midnight(cycle_start, self.tz):%Y-%m-%d %H:%M} UTC, {self.tz})",
            )
        if expired != self.plan or granted != self.plan_per_cycle:
            raise Violation(
                "renewal once per cycle",
                f"account {self.id} renewal expired {expired} and granted {granted}; the plan "
                f"held {self.plan} and the cycle grants {self.plan_per_cycle}",
            )
        self.cycle_start = cycle_start
        self.plan = self.grant = granted
        self.exhausted_alerted = False
        alerts = self.resume(at, "renewal", ("plan_exhausted", "wallet_empty"))
        return [*alerts, ("cycle_renewed", cycle_start.isoformat())]

    def next_renewal(self) -> datetime:
        return midnight(cycle_after(self.anchor, self.cycle_start), self.tz)

    def credit_wallet(self, amount: int, at: datetime) -> list[Alert]:
        self.wallet += amount
        return self.resume(at, "wallet_credit", ("wallet_empty",))

    def change_agent(
        self, agent_id: int, behaviour: str, limit: int | None, at: datetime
    ) -> list[Alert]:
        agent = self.agents[agent_id]
        agent.behaviour, agent.limit = behaviour, limit
        return self.resume(
            at, "settings", ("plan_exhausted", "wallet_empty", "monthly_limit"), only=agent_id
        )

    def new_month(self, at: datetime) -> list[Alert]:
        """The month rollover: spends restart; limit-stopped agents resume if they can pay,
        else wait (stopped) for what they really lack."""
        month = month_of(at, self.tz)
        alerts: list[Alert] = []
        for agent in sorted(self.agents.values(), key=lambda a: a.id):
            if agent.month >= month:
                continue
            agent.month, agent.spend = month, 0
            if agent.status == "stopped" and agent.reason == "monthly_limit":
                if self.room(agent, month) > 0:
                    alerts.append(("agent_resumed", agent.id, "new_month"))
                    agent.status, agent.reason = "active", None
                else:
                    agent.reason = self.why_short(agent, month, 1)
        return alerts
