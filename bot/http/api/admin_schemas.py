"""Bodies of the admin routes under /v1 (keys of the `admin` scope): the account's settings,
auto-recharge, budget and alert levels, top-ups, recharge attempts and the audit trail.

Amounts a person would type are sent as text and read by the same parsers as in Slack and
the CLI (`ledger/units.py`): money in the account's currency ("50", "50.00", "$50",
"1,000"), credits ("500", "2.5"). Answers carry whole numbers named for their unit
(`_minor` with the currency, `_millicredits`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from bot.http.api.schemas import Strict
from ledger.alert_levels import AlertLevels
from ledger.audit import AuditView
from ledger.auto_recharge import AutoRecharge, RechargeAmount
from ledger.budget import BudgetView

#: Text a person would type as an amount: the parsers bound it further.
Typed = Annotated[str, Field(min_length=0, max_length=64)]
Percent = Annotated[int, Field(ge=1, le=100)]


# --------------------------------------------------------------------------- settings


class AccountChange(Strict):
    """Only the fields sent change."""

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    plan_credits: Typed | None = Field(
        default=None, description="Per cycle, from the next renewal."
    )
    call_minute_rate: Typed | None = Field(default=None, description="Credits a call minute.")
    message_rate: Typed | None = Field(default=None, description="Credits a message.")
    per_second_billing: bool | None = None
    credits_per_unit: Annotated[int, Field(ge=1, le=10**6)] | None = Field(
        default=None, description="Credits bought by 1.00 of the currency."
    )
    topup_min: Typed | None = Field(default=None, description="Smallest top-up (money).")
    topup_max: Typed | None = Field(default=None, description="Largest top-up (money).")


class AccountSettingsOut(BaseModel):
    id: int
    name: str
    currency: str
    timezone: str
    plan_credits_per_cycle_millicredits: int
    call_minute_rate_millicredits: int
    message_rate_millicredits: int
    per_second_billing: bool
    credits_per_unit: int
    topup_min_minor: int
    topup_max_minor: int
    alert_channel_id: str | None
    billing_admins: list[str]
    monthly_budget_millicredits: int | None


# --------------------------------------------------------------------------- auto-recharge


class AutoRechargeIn(Strict):
    """The whole auto-recharge setting. Blank or "0" amounts are zero (allowed only where
    they mean nothing: an amount in target mode, a target in add mode)."""

    enabled: bool
    mode: Literal["add", "target"] = "add"
    threshold: Typed = Field(description="Recharge when the wallet is worth less (money).")
    amount: Typed = Field(default="", description="add: what each recharge adds (money).")
    target: Typed = Field(default="", description="target: the balance to top up to (money).")
    monthly_cap: Typed = Field(
        default="", description="Most auto-recharged in a calendar month (blank keeps it)."
    )


class AutoRechargeOut(BaseModel):
    enabled: bool
    paused: bool
    mode: Literal["add", "target"]
    currency: str
    threshold_minor: int
    amount_minor: int
    target_minor: int
    monthly_cap_minor: int
    recharge_now_minor: int | None = Field(
        description="What a recharge would charge right now (null: none would be made)."
    )
    recharge_now_skipped: str | None = Field(
        description="Why none would: 'monthly_cap_reached' or 'not_needed'."
    )

    @classmethod
    def of(cls, a: AutoRecharge, currency: str, now: RechargeAmount) -> AutoRechargeOut:
        return cls(
            enabled=a.enabled, paused=a.paused, mode=a.mode, currency=currency,
            threshold_minor=a.threshold_minor, amount_minor=a.amount_minor,
            target_minor=a.target_minor, monthly_cap_minor=a.monthly_cap_minor,
            recharge_now_minor=now.amount_minor, recharge_now_skipped=now.skipped,
        )  # fmt: skip


# --------------------------------------------------------------------------- budget, levels


class BudgetIn(Strict):
    monthly_budget: Typed | None = Field(
        description="Whole credits all agents together may spend in a calendar month, as "
        "typed ('5,000'); null or '' removes the budget."
    )


class BudgetOut(BaseModel):
    monthly_budget_millicredits: int | None
    month: str
    month_spend_millicredits: int = Field(description="Every agent's spend this month.")
    left_millicredits: int | None
    reached: bool = Field(description="Every agent is stopped for `account_budget`.")
    agents_stopped: int

    @classmethod
    def of(cls, view: BudgetView) -> BudgetOut:
        return cls(
            monthly_budget_millicredits=view.monthly_budget, month=view.month,
            month_spend_millicredits=view.month_spend, left_millicredits=view.left,
            reached=view.reached, agents_stopped=view.agents_stopped,
        )  # fmt: skip


class AlertLevelsIn(Strict):
    """Only the kinds sent change; an empty list turns a kind's alerts off."""

    plan_percent: list[Percent] | None = Field(default=None, description="% of the grant left.")
    wallet_credits: list[Typed] | None = Field(default=None, description="Credits left, typed.")
    limit_percent: list[Percent] | None = Field(default=None, description="% of a limit spent.")
    budget_percent: list[Percent] | None = Field(default=None, description="% of the budget.")


class AlertLevelsOut(BaseModel):
    plan_percent: list[int]
    wallet_millicredits: list[int]
    limit_percent: list[int]
    budget_percent: list[int]

    @classmethod
    def of(cls, levels: AlertLevels) -> AlertLevelsOut:
        return cls(
            plan_percent=list(levels.plan), wallet_millicredits=list(levels.wallet),
            limit_percent=list(levels.limit), budget_percent=list(levels.budget),
        )  # fmt: skip


# --------------------------------------------------------------------------- money


class TopupIn(Strict):
    amount: Typed = Field(description="Money in the account's currency, as typed: '50.00'.")


class CheckoutOut(BaseModel):
    topup_id: int
    amount_minor: int
    currency: str
    checkout_url: str = Field(description="The Stripe page to pay on (expires within the hour).")
    replayed: bool


class SavedCardOut(BaseModel):
    status: Literal["succeeded", "processing", "failed"]
    amount_minor: int
    currency: str
    credited_millicredits: int
    wallet_balance_millicredits: int | None
    payment_intent_id: str | None
    reason: str | None = None
    decline_code: str | None = None
    message: str | None = None
    replayed: bool = False


class TopupOut(BaseModel):
    id: int
    source: str
    status: str
    amount_minor: int
    currency: str
    credited_millicredits: int
    requested_by: str | None
    created_at: datetime
    paid_at: datetime | None


class TopupList(BaseModel):
    topups: list[TopupOut]


class RechargeOut(BaseModel):
    id: int
    status: str
    trigger: str
    amount_minor: int
    currency: str
    reason: str | None
    decline_code: str | None
    message: str | None
    created_at: datetime
    finished_at: datetime | None


class RechargeList(BaseModel):
    recharges: list[RechargeOut]


# --------------------------------------------------------------------------- audit


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor_kind: str = Field(description="slack_user, cli_operator, api_key, web_user or system.")
    actor: str = Field(description="The Slack user id, OS user, API key prefix or web user.")
    source: str = Field(description="slack, cli, api, web or system.")
    action: str
    subject: str | None
    before: dict[str, Any]
    after: dict[str, Any]

    @classmethod
    def of(cls, e: AuditView) -> AuditEventOut:
        return cls(**e.__dict__)


class AuditList(BaseModel):
    events: list[AuditEventOut]
