"""Customer accounts: creating them, reading them, changing their settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger import audit, policy
from ledger.agents import AgentView, agent_view, list_agents
from ledger.alert_levels import set_alert_levels
from ledger.audit import Actor
from ledger.currencies import currency, default_monthly_cap, default_topup_range
from ledger.cycles import cycle_start_on, local_date, month_key, utcnow, zone
from ledger.errors import InvalidInput, UnknownAccount
from ledger.journal import lock_account
from ledger.models import Account
from ledger.names import check_name, check_text
from ledger.renewals import renew_cycle
from ledger.units import MILLI, credits_to_money


@dataclass
class AccountSettings:
    """What `creditbot accounts create` asks for. Credits are milli-credits."""

    name: str
    slack_team_id: str | None = None
    currency: str = "USD"
    timezone: str = "UTC"
    plan_credits: int = 0
    cycle_anchor_day: int | None = None
    call_minute_rate: int = 10 * MILLI
    message_rate: int = 1 * MILLI
    per_second_billing: bool = False
    credits_per_unit: int = 100
    topup_min_minor: int | None = None
    topup_max_minor: int | None = None


_ACCOUNT_NAME = "An account's name"
#: A Slack workspace (T...) or Enterprise Grid (E...) id.
_TEAM_ID = re.compile(r"[TE][A-Z0-9]{1,31}")


def check_team_id(team_id: str) -> str:
    """A Slack team id as typed (spaces around it dropped), or a clear error."""
    text = (team_id or "").strip()
    if not _TEAM_ID.fullmatch(text):
        raise InvalidInput(f"{text!r} is not a Slack team id (they look like T0123ABCD).")
    return text


def _validate(s: AccountSettings) -> None:
    check_name(s.name, what=_ACCOUNT_NAME, max_length=200)
    if s.slack_team_id:
        check_team_id(s.slack_team_id)
    currency(s.currency)
    zone(s.timezone)
    if s.plan_credits < 0:
        raise InvalidInput("Plan credits per cycle cannot be negative.")
    if s.cycle_anchor_day is not None and not 1 <= s.cycle_anchor_day <= 31:
        raise InvalidInput("The cycle start day is a day of the month, 1 to 31.")
    _check_rate(s.call_minute_rate)
    _check_rate(s.message_rate)
    _check_price(s.credits_per_unit)


#: Largest rate, in milli-credits (a million credits a message or minute), and largest credit
#: price: bigger is a typo, and keeps every charge and top-up within 64-bit integers.
MAX_RATE = 10**9
MAX_CREDIT_PRICE = 10**6


def _check_rate(milli: int) -> int:
    if not 0 < milli <= MAX_RATE:
        raise InvalidInput(
            f"Rates must be greater than zero and at most {MAX_RATE // MILLI:,} credits."
        )
    return milli


def _check_price(credits_per_unit: int) -> int:
    if not 0 < credits_per_unit <= MAX_CREDIT_PRICE:
        raise InvalidInput(
            f"The credit price must be greater than zero and at most {MAX_CREDIT_PRICE:,}."
        )
    return credits_per_unit


def create_account(
    session: Session, settings: AccountSettings, *, now: datetime | None = None
) -> Account:
    """Create the account and grant its first cycle of plan credits."""
    now = now or utcnow()
    _validate(settings)
    today = local_date(now, settings.timezone)
    anchor = settings.cycle_anchor_day or today.day
    money = currency(settings.currency)
    low, high = settings.topup_min_minor, settings.topup_max_minor
    if low is None or high is None:
        defaults = default_topup_range(money.code)
        low = defaults.min_minor if low is None else low
        high = defaults.max_minor if high is None else high
    if low <= 0 or high < low:
        raise InvalidInput("The top-up minimum must be above zero and at most the maximum.")
    account = Account(
        name=check_name(settings.name, what=_ACCOUNT_NAME, max_length=200),
        slack_team_id=check_team_id(settings.slack_team_id) if settings.slack_team_id else None,
        currency=money.code,
        timezone=settings.timezone,
        plan_credits_per_cycle=settings.plan_credits,
        cycle_anchor_day=anchor,
        call_minute_rate=settings.call_minute_rate,
        message_rate=settings.message_rate,
        per_second_billing=settings.per_second_billing,
        credits_per_unit=settings.credits_per_unit,
        topup_min_minor=low,
        topup_max_minor=high,
        auto_recharge_monthly_cap_minor=default_monthly_cap(money.code, low, high),
        plan_grant=0,
        plan_balance=0,
        wallet_balance=0,
        billing_admins=[],
        created_at=now,
    )
    session.add(account)
    try:
        session.flush()
    except IntegrityError as exc:
        raise InvalidInput(f"Slack team {settings.slack_team_id} already has an account.") from exc
    renew_cycle(session, account.id, cycle_start_on(anchor, today), now=now, alert=False)
    return account


def get_account(session: Session, ref: int | str) -> Account:
    """An account by id, Slack team id or exact name."""
    stmt = select(Account)
    if isinstance(ref, int) or str(ref).isdigit():
        stmt = stmt.where(Account.id == int(ref))
    else:
        stmt = stmt.where((Account.slack_team_id == ref) | (Account.name == ref))
    found = session.execute(stmt).scalars().all()
    if len(found) != 1:
        raise UnknownAccount(
            f"No account {ref!r}." if not found else f"{ref!r} names several accounts."
        )
    return found[0]


def list_accounts(session: Session) -> list[Account]:
    """Every account, oldest first."""
    return list(session.execute(select(Account).order_by(Account.id)).scalars())


def account_for_team(session: Session, team_id: str) -> Account | None:
    return session.execute(
        select(Account).where(Account.slack_team_id == team_id)
    ).scalar_one_or_none()


@dataclass(frozen=True)
class BalanceView:
    """What a person sees of an account: plan credits, wallet, next renewal, agents."""

    account_id: int
    name: str
    currency: str
    plan_balance: int
    plan_grant: int
    wallet_balance: int
    wallet_value_minor: int
    cycle_start: date | None
    next_renewal_at: datetime | None
    agents: list[AgentView]
    #: The monthly budget of all agents together (None: none) and what they spent of it
    #: this calendar month.
    monthly_budget: int | None = None
    month_spend: int = 0


def balance(session: Session, account_id: int, *, now: datetime | None = None) -> BalanceView:
    """A read of the account's balances and agents (month spend as of `now`)."""
    now = now or utcnow()
    account = session.get(Account, account_id)
    if account is None:
        raise UnknownAccount(f"No account {account_id}.")
    current = month_key(now, account.timezone)
    return BalanceView(
        account_id=account.id,
        name=account.name,
        currency=account.currency,
        plan_balance=account.plan_balance,
        plan_grant=account.plan_grant,
        wallet_balance=account.wallet_balance,
        wallet_value_minor=credits_to_money(
            account.wallet_balance, account.currency, account.credits_per_unit
        ),
        cycle_start=account.cycle_start,
        next_renewal_at=account.next_renewal_at,
        agents=[agent_view(a, current) for a in list_agents(session, account_id)],
        monthly_budget=account.monthly_budget,
        month_spend=policy.spend_in(current, account.account_month, account.account_month_spend),
    )


def configure_account(
    session: Session,
    account_id: int,
    *,
    name: str | None = None,
    plan_credits: int | None = None,
    call_minute_rate: int | None = None,
    message_rate: int | None = None,
    per_second_billing: bool | None = None,
    credits_per_unit: int | None = None,
    topup_min_minor: int | None = None,
    topup_max_minor: int | None = None,
    plan_low_percent: int | None = None,
    wallet_low_credits: int | None = None,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> Account:
    """Change an account's settings; None leaves a setting as it is. What changed goes
    into the audit trail with `actor`.

    A new plan size is granted from the next renewal on; new rates and billing mode apply
    to charges from now on (a call keeps the rate it started with). The time zone and the
    cycle day are fixed once cycles have started: changing them would move a renewal.
    `plan_low_percent` and `wallet_low_credits` set a single alert level of their kind (0:
    none); `ledger.alert_levels` sets several.
    """
    account = lock_account(session, account_id)
    before = settings_of(account)
    if name is not None:
        account.name = check_name(name, what=_ACCOUNT_NAME, max_length=200)
    if plan_credits is not None:
        if plan_credits < 0:
            raise InvalidInput("Plan credits per cycle cannot be negative.")
        account.plan_credits_per_cycle = plan_credits
    for field, value in (("call_minute_rate", call_minute_rate), ("message_rate", message_rate)):
        if value is not None:
            setattr(account, field, _check_rate(value))
    if per_second_billing is not None:
        account.per_second_billing = per_second_billing
    if credits_per_unit is not None:
        account.credits_per_unit = _check_price(credits_per_unit)
    low = account.topup_min_minor if topup_min_minor is None else topup_min_minor
    high = account.topup_max_minor if topup_max_minor is None else topup_max_minor
    if low <= 0 or high < low:
        raise InvalidInput("The top-up minimum must be above zero and at most the maximum.")
    account.topup_min_minor, account.topup_max_minor = low, high
    if plan_low_percent is not None:
        if not 0 <= plan_low_percent <= 100:
            raise InvalidInput("The plan-low alert is a percentage from 0 to 100.")
    if wallet_low_credits is not None:
        if wallet_low_credits < 0:
            raise InvalidInput("The wallet-low alert threshold cannot be negative.")
    audit.record(session, account_id, actor, "account", before, settings_of(account), now=now)
    if plan_low_percent is not None or wallet_low_credits is not None:
        set_alert_levels(
            session,
            account_id,
            plan=None if plan_low_percent is None else [plan_low_percent] * (plan_low_percent > 0),
            wallet=(
                None if wallet_low_credits is None
                else [wallet_low_credits] * (wallet_low_credits > 0)
            ),
            actor=actor,
            now=now,
        )  # fmt: skip
    session.flush()
    return account


#: The settings `configure_account` changes, as the audit trail and the admin API show them.
SETTINGS = ("name", "plan_credits_per_cycle", "call_minute_rate", "message_rate",
            "per_second_billing", "credits_per_unit", "topup_min_minor", "topup_max_minor")  # fmt: skip


def settings_of(account: Account) -> dict[str, object]:
    return {name: getattr(account, name) for name in SETTINGS}


def set_alert_channel(
    session: Session, account_id: int, channel_id: str | None, *, actor: Actor | None = None
) -> None:
    account = lock_account(session, account_id)
    before = account.alert_channel_id
    channel = check_text(channel_id or "", what="A Slack channel id", max_length=32, required=False)
    account.alert_channel_id = channel or None
    audit.record(
        session, account_id, actor, "alert_channel",
        {"alert_channel_id": before}, {"alert_channel_id": account.alert_channel_id},
    )  # fmt: skip


def set_billing_admins(
    session: Session, account_id: int, user_ids: list[str], *, actor: Actor | None = None
) -> None:
    """The Slack users (besides workspace admins and owners) who may top up and change settings."""
    account = lock_account(session, account_id)
    before = list(account.billing_admins or [])
    users = (
        check_text(u, what="A Slack user id", max_length=255, required=False) for u in user_ids
    )
    account.billing_admins = sorted({u for u in users if u})
    audit.record(
        session, account_id, actor, "billing_admins",
        {"billing_admins": before}, {"billing_admins": account.billing_admins},
    )  # fmt: skip
