"""The /v1 request and answer bodies, and how an answer is made from a ledger view.

Amounts are integer milli-credits (1 credit = 1,000). Request bodies are strict: exact JSON
types and no unknown fields.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ledger.accounts import BalanceView
from ledger.agents import AgentView
from ledger.calls import MAX_DURATION
from ledger.calls import CallEnd as CallEnded
from ledger.charges import MAX_QUANTITY
from ledger.usage import UsageReport, UsageRow

#: Ids are 32-bit in the database: a larger number cannot name anything.
MAX_ID = 2**31 - 1
#: Largest monthly limit (a thousand billion credits): bigger is a typo.
MAX_LIMIT = 10**15
MAX_MINUTE = MAX_DURATION // 60


class Strict(BaseModel):
    """Request bodies: exact JSON types (no "5" for 5, no 5.0 for 5), no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid")


AgentId = Annotated[int, Field(ge=1, le=MAX_ID, description="The agent's id.")]
Behaviour = Literal["stop", "use_balance"]
StopReason = Literal["plan_exhausted", "wallet_empty", "monthly_limit", "account_budget"]
AgentName = Annotated[str, Field(min_length=1, max_length=100)]
Limit = Annotated[
    int,
    Field(ge=1, le=MAX_LIMIT, description="Monthly spending limit in milli-credits."),
]


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. 'unknown_agent'.")
    message: str = Field(description="What went wrong, fit to show a person.")
    fields: list[dict[str, str]] | None = Field(
        default=None, description="For invalid requests: each field and what is wrong with it."
    )


class ErrorResponse(BaseModel):
    error: ErrorDetail


# --------------------------------------------------------------------------- agents


class AgentCreate(Strict):
    name: AgentName
    behaviour: Behaviour = Field(
        default="stop", description="When plan credits run out: stop, or go on from the wallet."
    )
    monthly_limit_millicredits: Limit | None = None


class AgentUpdate(Strict):
    """Only the fields sent change. `monthly_limit_millicredits: null` removes the limit."""

    name: AgentName | None = None
    behaviour: Behaviour | None = None
    monthly_limit_millicredits: Limit | None = None

    def changes(self) -> dict[str, Any]:
        """The settings sent, by their ledger names (those not sent stay as they are)."""
        sent = self.model_fields_set
        return {setting: getattr(self, f) for f, setting in _SETTINGS.items() if f in sent}


#: AgentUpdate's fields and the `ledger.agents.change_agent` settings they change.
_SETTINGS = {
    "name": "name",
    "behaviour": "behaviour",
    "monthly_limit_millicredits": "monthly_limit",
}


class AgentOut(BaseModel):
    id: int
    name: str
    status: Literal["active", "stopped"]
    stop_reason: StopReason | None
    behaviour: Behaviour
    monthly_limit_millicredits: int | None
    month_spend_millicredits: int = Field(description="Spent this calendar month, both sources.")

    @classmethod
    def of(cls, agent: AgentView) -> AgentOut:
        return cls(**_agent_fields(agent))


def _agent_fields(agent: AgentView) -> dict[str, Any]:
    return {
        "id": agent.id,
        "name": agent.name,
        "status": agent.status,
        "stop_reason": agent.stop_reason,
        "behaviour": agent.behaviour,
        "monthly_limit_millicredits": agent.monthly_limit,
        "month_spend_millicredits": agent.month_spend,
    }


class AgentUpdated(AgentOut):
    resumed: bool = Field(description="Whether the change resumed the stopped agent (rule 6).")

    @classmethod
    def after(cls, agent: AgentView, resumed: bool) -> AgentUpdated:
        return cls(**_agent_fields(agent), resumed=resumed)


class AgentList(BaseModel):
    agents: list[AgentOut]


# --------------------------------------------------------------------------- charges


class MessageCharge(Strict):
    agent_id: AgentId
    quantity: int = Field(default=1, ge=1, le=MAX_QUANTITY, description="Messages to charge.")
    direction: Literal["inbound", "outbound"] = Field(
        description="Received (inbound) or about to be sent (outbound); both cost the same."
    )


class ChargeOut(BaseModel):
    """The answer to "may the agent do this work?" and what it cost."""

    allowed: bool
    reason: StopReason | None = Field(description="Why the work was refused.")
    agent_id: int
    amount_millicredits: int = Field(description="Price of the work (charged only if allowed).")
    from_plan_millicredits: int
    from_wallet_millicredits: int
    plan_balance_millicredits: int
    wallet_balance_millicredits: int
    agent_status: Literal["active", "stopped"]
    replayed: bool = Field(description="True when this answers a repeated Idempotency-Key.")


class MessageChargeOut(ChargeOut):
    quantity: int
    direction: Literal["inbound", "outbound"]


class RefusedMessage(MessageChargeOut):
    error: ErrorDetail


# --------------------------------------------------------------------------- calls


class CallStart(Strict):
    agent_id: AgentId


class CallMinute(Strict):
    minute: int = Field(ge=2, le=MAX_MINUTE, description="The minute starting now: 2, 3, ...")


class CallEnd(Strict):
    duration_seconds: int = Field(ge=0, le=MAX_DURATION)


class CallMinuteOut(ChargeOut):
    call_id: str
    minute: int
    hang_up: bool = Field(description="True: end the call now, this minute is not paid.")


class RefusedMinute(CallMinuteOut):
    error: ErrorDetail


class CallEndOut(BaseModel):
    call_id: str
    minutes_charged: int
    duration_seconds: int
    charged_millicredits: int = Field(description="What the call cost after any refund.")
    refunded_millicredits: int = Field(description="Per-second billing: unused seconds back.")
    replayed: bool

    @classmethod
    def of(cls, ended: CallEnded) -> CallEndOut:
        return cls(
            call_id=ended.call_id,
            minutes_charged=ended.minutes_charged,
            duration_seconds=ended.duration_seconds,
            charged_millicredits=ended.charged,
            refunded_millicredits=ended.refunded,
            replayed=ended.replayed,
        )


# --------------------------------------------------------------------------- balance


class BalanceOut(BaseModel):
    account_id: int
    name: str
    currency: str
    plan_balance_millicredits: int = Field(description="Plan credits left this cycle.")
    plan_grant_millicredits: int = Field(description="Plan credits granted this cycle.")
    wallet_balance_millicredits: int
    wallet_value_minor: int = Field(description="The wallet's worth in the currency's cents.")
    cycle_start: date | None
    next_renewal_at: datetime | None
    agents: list[AgentOut]
    monthly_budget_millicredits: int | None = Field(
        description="What all agents together may spend in a calendar month, or null."
    )
    month_spend_millicredits: int = Field(
        description="What all agents together spent this calendar month, both sources."
    )

    @classmethod
    def of(cls, view: BalanceView) -> BalanceOut:
        return cls(
            account_id=view.account_id,
            name=view.name,
            currency=view.currency,
            plan_balance_millicredits=view.plan_balance,
            plan_grant_millicredits=view.plan_grant,
            wallet_balance_millicredits=view.wallet_balance,
            wallet_value_minor=view.wallet_value_minor,
            cycle_start=view.cycle_start,
            next_renewal_at=view.next_renewal_at,
            agents=[AgentOut.of(a) for a in view.agents],
            monthly_budget_millicredits=view.monthly_budget,
            month_spend_millicredits=view.month_spend,
        )


# --------------------------------------------------------------------------- usage


class UsageRowOut(BaseModel):
    """Usage of one group; the fields not grouped by are null."""

    agent_id: int | None
    agent: str | None = Field(description="The agent's name.")
    day: date | None = Field(description="A local day in the account's time zone.")
    unit: Literal["message", "call_minute"] | None
    messages: int = Field(description="Messages charged.")
    call_minutes: int = Field(description="Call minutes charged (started).")
    from_plan_millicredits: int = Field(description="Taken from plan credits, net of refunds.")
    from_wallet_millicredits: int = Field(description="Taken from the wallet, net of refunds.")
    total_millicredits: int

    @classmethod
    def of(cls, row: UsageRow) -> UsageRowOut:
        return cls(
            agent_id=row.agent_id,
            agent=row.agent,
            day=row.day,
            unit=row.unit,  # type: ignore[arg-type]
            messages=row.messages,
            call_minutes=row.call_minutes,
            from_plan_millicredits=row.from_plan,
            from_wallet_millicredits=row.from_wallet,
            total_millicredits=row.total,
        )


class UsageOut(BaseModel):
    account_id: int
    timezone: str = Field(description="The account's time zone: days are its local days.")
    from_: date = Field(alias="from", description="First day of the range (included).")
    to: date = Field(description="Last day of the range (included).")
    group_by: list[Literal["agent", "day", "unit"]]
    rows: list[UsageRowOut] = Field(description="One row per group with usage, in group order.")
    total: UsageRowOut

    model_config = ConfigDict(populate_by_name=True)

    @classmethod
    def of(cls, report: UsageReport) -> UsageOut:
        return cls(
            account_id=report.account_id,
            timezone=report.timezone,
            from_=report.start,
            to=report.end,
            group_by=list(report.group_by),  # type: ignore[arg-type]
            rows=[UsageRowOut.of(r) for r in report.rows],
            total=UsageRowOut.of(report.total),
        )
