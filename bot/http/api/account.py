"""/v1/account: the account's settings, auto-recharge, budget and alert levels, for keys of
the `admin` scope (a platform automating what billing admins do in Slack).

Each handler reads what a person would type with the same parsers as Slack and the CLI,
and calls the same ledger service, in one transaction that also writes the audit trail
naming the key. A runtime key gets 403.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from bot.forms import auto_recharge_fields, recharge_target_field
from bot.http.api.admin_schemas import (
    AccountChange,
    AccountSettingsOut,
    AlertLevelsIn,
    AlertLevelsOut,
    AutoRechargeIn,
    AutoRechargeOut,
    BudgetIn,
    BudgetOut,
)
from bot.http.api.authentication import ApiKeyRoute
from bot.http.api.dependencies import CurrentAccount
from bot.http.api.errors import error_responses
from ledger.accounts import configure_account, get_account
from ledger.alert_levels import alert_levels, parse_wallet_levels, set_alert_levels
from ledger.audit import Actor
from ledger.auto_recharge import auto_recharge, recharge_preview, update_auto_recharge
from ledger.budget import budget_view, parse_budget, set_budget
from ledger.errors import FieldError, InvalidInput
from ledger.models import Account
from ledger.units import credits, parse_money

router = APIRouter(route_class=ApiKeyRoute)
ADMIN_ERRORS = error_responses(400, 401, 403, 413, 422)


def _settings(account: Account) -> AccountSettingsOut:
    return AccountSettingsOut(
        id=account.id, name=account.name, currency=account.currency, timezone=account.timezone,
        plan_credits_per_cycle_millicredits=account.plan_credits_per_cycle,
        call_minute_rate_millicredits=account.call_minute_rate,
        message_rate_millicredits=account.message_rate,
        per_second_billing=account.per_second_billing, credits_per_unit=account.credits_per_unit,
        topup_min_minor=account.topup_min_minor, topup_max_minor=account.topup_max_minor,
        alert_channel_id=account.alert_channel_id,
        billing_admins=list(account.billing_admins or []),
        monthly_budget_millicredits=account.monthly_budget,
    )  # fmt: skip


def _typed_credits(text: str | None, field: str) -> int | None:
    if text is None:
        return None
    try:
        return credits(text)
    except InvalidInput as exc:
        raise FieldError(field, str(exc)) from exc


def _typed_money(text: str | None, currency: str, field: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_money(text, currency)
    except InvalidInput as exc:
        raise FieldError(field, str(exc)) from exc


def read_settings(session: Session, account_id: int, *, actor: Actor) -> AccountSettingsOut:
    return _settings(get_account(session, account_id))


def change_settings(
    session: Session, account_id: int, body: AccountChange, *, actor: Actor
) -> AccountSettingsOut:
    """The settings sent, read as the CLI reads them, through `configure_account`."""
    money = get_account(session, account_id).currency
    account = configure_account(
        session,
        account_id,
        name=body.name,
        plan_credits=_typed_credits(body.plan_credits, "plan_credits"),
        call_minute_rate=_typed_credits(body.call_minute_rate, "call_minute_rate"),
        message_rate=_typed_credits(body.message_rate, "message_rate"),
        per_second_billing=body.per_second_billing,
        credits_per_unit=body.credits_per_unit,
        topup_min_minor=_typed_money(body.topup_min, money, "topup_min"),
        topup_max_minor=_typed_money(body.topup_max, money, "topup_max"),
        actor=actor,
    )
    return _settings(account)


@router.get(
    "/account", response_model=AccountSettingsOut, responses=error_responses(401, 403),
    summary="Read the account's settings (admin scope)",
)  # fmt: skip
async def get_settings(account: CurrentAccount) -> AccountSettingsOut:
    return await account.admin(read_settings)


@router.patch(
    "/account", response_model=AccountSettingsOut, responses=ADMIN_ERRORS,
    summary="Change the account's name, plan, rates, billing mode or top-up limits (admin)",
)  # fmt: skip
async def patch_settings(body: AccountChange, account: CurrentAccount) -> AccountSettingsOut:
    return await account.admin(change_settings, body)


# --------------------------------------------------------------------------- auto-recharge


def read_auto_recharge(session: Session, account_id: int, *, actor: Actor) -> AutoRechargeOut:
    account = get_account(session, account_id)
    preview = recharge_preview(session, account_id)
    return AutoRechargeOut.of(auto_recharge(account), account.currency, preview)


def save_auto_recharge(
    session: Session, account_id: int, body: AutoRechargeIn, *, actor: Actor
) -> AutoRechargeOut:
    """The form Slack's modal shows, read the same way (a blank cap keeps the cap)."""
    money = get_account(session, account_id).currency
    texts = {"threshold": body.threshold, "amount": body.amount, "monthly_cap": body.monthly_cap}
    values, errors = auto_recharge_fields(texts, money)
    target, target_error = recharge_target_field(body.target, money)
    if target_error:
        errors["target"] = target_error
    if errors:
        field, message = next(iter(errors.items()))
        raise FieldError(field, message)
    update_auto_recharge(
        session, account_id, enabled=body.enabled, threshold_minor=values["threshold"] or 0,
        amount_minor=values["amount"] or 0, monthly_cap_minor=values["monthly_cap"],
        mode=body.mode, target_minor=target or 0, actor=actor,
    )  # fmt: skip
    return read_auto_recharge(session, account_id, actor=actor)


@router.get(
    "/account/auto-recharge", response_model=AutoRechargeOut,
    responses=error_responses(401, 403),
    summary="Auto-recharge settings, and what a recharge would charge now (admin)",
)  # fmt: skip
async def get_auto_recharge(account: CurrentAccount) -> AutoRechargeOut:
    return await account.admin(read_auto_recharge)


@router.put(
    "/account/auto-recharge", response_model=AutoRechargeOut, responses=ADMIN_ERRORS,
    summary="Save auto-recharge: add an amount, or top up to a target, below a threshold (admin)",
)  # fmt: skip
async def put_auto_recharge(body: AutoRechargeIn, account: CurrentAccount) -> AutoRechargeOut:
    return await account.admin(save_auto_recharge, body)


# --------------------------------------------------------------------------- budget, levels


def read_budget(session: Session, account_id: int, *, actor: Actor) -> BudgetOut:
    return BudgetOut.of(budget_view(session, account_id))


def save_budget(session: Session, account_id: int, body: BudgetIn, *, actor: Actor) -> BudgetOut:
    amount = parse_budget(body.monthly_budget)
    return BudgetOut.of(set_budget(session, account_id, amount, actor=actor))


@router.get(
    "/account/budget", response_model=BudgetOut, responses=error_responses(401, 403),
    summary="The monthly budget of all agents together, and this month's spend (admin)",
)  # fmt: skip
async def get_budget(account: CurrentAccount) -> BudgetOut:
    return await account.admin(read_budget)


@router.put(
    "/account/budget", response_model=BudgetOut, responses=ADMIN_ERRORS,
    summary="Set or remove the monthly budget: reaching it stops every agent (admin)",
)  # fmt: skip
async def put_budget(body: BudgetIn, account: CurrentAccount) -> BudgetOut:
    return await account.admin(save_budget, body)


def read_alert_levels(session: Session, account_id: int, *, actor: Actor) -> AlertLevelsOut:
    return AlertLevelsOut.of(alert_levels(get_account(session, account_id)))


def save_alert_levels(
    session: Session, account_id: int, body: AlertLevelsIn, *, actor: Actor
) -> AlertLevelsOut:
    wallet = None if body.wallet_credits is None else parse_wallet_levels(body.wallet_credits)
    levels = set_alert_levels(
        session, account_id, plan=body.plan_percent, wallet=wallet, limit=body.limit_percent,
        budget=body.budget_percent, actor=actor,
    )  # fmt: skip
    return AlertLevelsOut.of(levels)


@router.get(
    "/account/alert-levels", response_model=AlertLevelsOut, responses=error_responses(401, 403),
    summary="Alert levels of each kind (admin)",
)  # fmt: skip
async def get_alert_levels(account: CurrentAccount) -> AlertLevelsOut:
    return await account.admin(read_alert_levels)


@router.patch(
    "/account/alert-levels", response_model=AlertLevelsOut, responses=ADMIN_ERRORS,
    summary="Change the alert levels of the kinds sent (admin)",
)  # fmt: skip
async def patch_alert_levels(body: AlertLevelsIn, account: CurrentAccount) -> AlertLevelsOut:
    return await account.admin(save_alert_levels, body)
