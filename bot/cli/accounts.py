"""`creditbot accounts create | configure | show | list`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from rich.markup import escape

from bot.cli.agents import agent_json, agents_table
from bot.cli.environment import console, operator, run
from bot.cli.options import CREDITS
from bot.cli.output import emit_json, json_option, local_day, table
from bot.cli.spend_controls import alert_levels_json, alert_levels_line, budget_line
from ledger import accounts as accounts_service
from ledger.accounts import AccountSettings, BalanceView
from ledger.auto_recharge import auto_recharge as auto_recharge_settings
from ledger.auto_recharge import update_auto_recharge
from ledger.errors import LedgerError, NoSavedCard
from ledger.models import Account
from ledger.units import currency_exponent, format_credits, format_money, parse_money


def register(cli: click.Group) -> None:
    cli.add_command(accounts)


@click.group()
def accounts() -> None:
    """Customer accounts: one per Slack workspace."""


@accounts.command("create")
@click.option("--name", required=True, help="The team's name.")
@click.option("--slack-team", default=None, help="Slack team id (T...), if known.")
@click.option(
    "--currency",
    default="USD",
    show_default=True,
    help="ISO 4217 currency code (USD, EUR, JPY...).",
)
@click.option(
    "--timezone", default="UTC", show_default=True, help="IANA time zone for cycles and months."
)
@click.option(
    "--plan-credits",
    type=CREDITS,
    default="0",
    show_default=True,
    help="Plan credits granted each cycle.",
)
@click.option(
    "--cycle-day",
    type=click.IntRange(1, 31),
    default=None,
    help="Day of the month the cycle starts (default: today).",
)
@click.option(
    "--call-minute-rate",
    type=CREDITS,
    default="10",
    show_default=True,
    help="Credits per call minute.",
)
@click.option(
    "--message-rate", type=CREDITS, default="1", show_default=True, help="Credits per message."
)
@click.option(
    "--per-second/--per-minute",
    default=False,
    show_default=True,
    help="Bill calls per second (refund the unused part of the last minute).",
)
@click.option(
    "--credit-price",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Credits bought by 1.00 of the currency.",
)
@click.option(
    "--topup-min", default=None, help="Smallest top-up (money; default 10.00 USD or about that)."
)
@click.option(
    "--topup-max", default=None, help="Largest top-up (money; default 1,000.00 USD or about that)."
)
def create(
    name: str,
    slack_team: str | None,
    currency: str,
    timezone: str,
    plan_credits: int,
    cycle_day: int | None,
    call_minute_rate: int,
    message_rate: int,
    per_second: bool,
    credit_price: int,
    topup_min: str | None,
    topup_max: str | None,
) -> None:
    """Create an account and grant its first cycle of plan credits."""
    try:
        low = parse_money(topup_min, currency) if topup_min else None
        high = parse_money(topup_max, currency) if topup_max else None
    except LedgerError as exc:
        raise click.BadParameter(str(exc)) from exc
    settings = AccountSettings(
        name=name,
        slack_team_id=slack_team,
        currency=currency.upper(),
        timezone=timezone,
        plan_credits=plan_credits,
        cycle_anchor_day=cycle_day,
        call_minute_rate=call_minute_rate,
        message_rate=message_rate,
        per_second_billing=per_second,
        credits_per_unit=credit_price,
        topup_min_minor=low,
        topup_max_minor=high,
    )
    account = run(lambda s: accounts_service.create_account(s, settings))
    console.print(f"account {account.id} ({account.name}) created")
    _show(account.id)


def _money(value: str | None, currency: str, option: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_money(value, currency)
    except LedgerError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from exc


@accounts.command("configure")
@click.argument("account_ref")
@click.option("--name", default=None, help="A new name.")
@click.option(
    "--plan-credits",
    type=CREDITS,
    default=None,
    help="Plan credits per cycle (from the next renewal).",
)
@click.option("--call-minute-rate", type=CREDITS, default=None, help="Credits per call minute.")
@click.option("--message-rate", type=CREDITS, default=None, help="Credits per message.")
@click.option(
    "--per-second/--per-minute", default=None, help="Bill calls per second or per started minute."
)
@click.option(
    "--credit-price",
    type=click.IntRange(1),
    default=None,
    help="Credits bought by 1.00 of the currency.",
)
@click.option("--topup-min", default=None, help="Smallest top-up (money).")
@click.option("--topup-max", default=None, help="Largest top-up (money).")
@click.option(
    "--plan-low-percent",
    type=click.IntRange(0, 100),
    default=None,
    help="Alert when plan credits fall to this % of the grant.",
)
@click.option(
    "--wallet-low",
    type=CREDITS,
    default=None,
    help="Alert when the wallet falls below this many credits.",
)
@click.option(
    "--auto-recharge/--no-auto-recharge", default=None, help="Turn auto-recharge on or off."
)
@click.option(
    "--recharge-threshold",
    default=None,
    help="Recharge when the wallet is worth less than this (money).",
)
@click.option("--recharge-amount", default=None, help="How much each recharge adds (money).")
@click.option(
    "--recharge-mode",
    type=click.Choice(["add", "target"]),
    default=None,
    help="add: add the amount; target: top the wallet back up to --recharge-target.",
)
@click.option(
    "--recharge-target", default=None, help="The balance a 'target' recharge tops up to (money)."
)
@click.option(
    "--recharge-cap", default=None, help="Most auto-recharged in a calendar month (money)."
)
def configure(
    account_ref: str,
    name: str | None,
    plan_credits: int | None,
    call_minute_rate: int | None,
    message_rate: int | None,
    per_second: bool | None,
    credit_price: int | None,
    topup_min: str | None,
    topup_max: str | None,
    plan_low_percent: int | None,
    wallet_low: int | None,
    auto_recharge: bool | None,
    recharge_threshold: str | None,
    recharge_amount: str | None,
    recharge_mode: str | None,
    recharge_target: str | None,
    recharge_cap: str | None,
) -> None:
    """Change ACCOUNT's plan, rates, top-up limits, alert thresholds and auto-recharge.

    Options left out keep their value. Everything is checked before anything is saved.
    """

    def work(session):  # noqa: ANN001, ANN202
        account = accounts_service.get_account(session, account_ref)
        money = account.currency
        accounts_service.configure_account(
            session,
            account.id,
            name=name,
            plan_credits=plan_credits,
            call_minute_rate=call_minute_rate,
            message_rate=message_rate,
            per_second_billing=per_second,
            credits_per_unit=credit_price,
            topup_min_minor=_money(topup_min, money, "--topup-min"),
            topup_max_minor=_money(topup_max, money, "--topup-max"),
            plan_low_percent=plan_low_percent,
            wallet_low_credits=wallet_low,
            actor=operator(),
        )
        recharge = (recharge_threshold, recharge_amount, recharge_cap, recharge_mode,
                    recharge_target)  # fmt: skip
        if auto_recharge is not None or any(v is not None for v in recharge):
            current = auto_recharge_settings(account)
            try:
                update_auto_recharge(
                    session,
                    account.id,
                    enabled=current.enabled if auto_recharge is None else auto_recharge,
                    threshold_minor=_money(recharge_threshold, money, "--recharge-threshold")
                    or current.threshold_minor,
                    amount_minor=_money(recharge_amount, money, "--recharge-amount")
                    or current.amount_minor,
                    monthly_cap_minor=_money(recharge_cap, money, "--recharge-cap"),
                    mode=recharge_mode,
                    target_minor=_money(recharge_target, money, "--recharge-target"),
                    actor=operator(),
                )
            except NoSavedCard as exc:  # nothing is saved: the transaction rolls back
                raise click.ClickException(
                    f"{exc} Open the page from `creditbot stripe add-card --account"
                    f" {account.id}` (or press “Add a card” in Slack's auto-recharge settings),"
                    " then turn auto-recharge on."
                ) from exc
        return account.id

    _show(run(work))


@accounts.command("show")
@click.argument("account_ref")
@json_option
def show(account_ref: str, as_json: bool) -> None:
    """Plan credits, wallet, next renewal and agents of ACCOUNT (id, Slack team or name)."""
    account_id = run(lambda s: accounts_service.get_account(s, account_ref).id)
    _show(account_id, as_json=as_json)


@accounts.command("list")
@json_option
def list_(as_json: bool) -> None:
    """Every account: its Slack workspace, balances, next renewal (local date) and agents."""

    def read(session):  # noqa: ANN001, ANN202
        return [
            (account, accounts_service.balance(session, account.id))
            for account in accounts_service.list_accounts(session)
        ]

    found = run(read)
    if as_json:
        emit_json([account_json(account, view) for account, view in found])
        return
    out = table(
        "id", "account", "Slack team", "plan credits", "wallet", "next renewal", "agents",
        "auto-recharge",
    )  # fmt: skip
    for account, view in found:
        stopped = sum(1 for a in view.agents if a.status == "stopped")
        out.add_row(
            str(account.id),
            account.name,
            account.slack_team_id or "",
            f"{format_credits(view.plan_balance)} of {format_credits(view.plan_grant)}",
            format_money(view.wallet_value_minor, view.currency),
            _renewal_text(view.next_renewal_at, account.timezone),
            f"{len(view.agents)}" + (f" ({stopped} stopped)" if stopped else ""),
            _auto_recharge_state(account),
        )
    console.print(out)
    if not found:
        console.print("No accounts yet: `creditbot accounts create --name ...` makes one.")


def _auto_recharge_state(account: Account) -> str:
    ar = auto_recharge_settings(account)
    return "on" if ar.enabled and not ar.paused else ("paused" if ar.enabled else "off")


def _renewal_text(at: datetime | None, tz: str) -> str:
    """A renewal happens at local midnight: people read it as that local date."""
    day = local_day(at, tz)
    return f"{day:%a %d %b %Y} ({tz})" if day else "none"


def account_json(account: Account, view: BalanceView) -> dict[str, Any]:
    """An account for scripts: every amount whole, in its unit."""
    ar = auto_recharge_settings(account)
    return {
        "id": account.id,
        "name": account.name,
        "slack_team_id": account.slack_team_id,
        "currency": account.currency,
        "timezone": account.timezone,
        "plan_balance_millicredits": view.plan_balance,
        "plan_grant_millicredits": view.plan_grant,
        "plan_credits_per_cycle_millicredits": account.plan_credits_per_cycle,
        "wallet_balance_millicredits": view.wallet_balance,
        "wallet_value_minor": view.wallet_value_minor,
        "cycle_start": view.cycle_start,
        "next_renewal_at": view.next_renewal_at,
        "next_renewal_date": local_day(view.next_renewal_at, account.timezone),
        "call_minute_rate_millicredits": account.call_minute_rate,
        "message_rate_millicredits": account.message_rate,
        "per_second_billing": account.per_second_billing,
        "credits_per_unit": account.credits_per_unit,
        "topup_min_minor": account.topup_min_minor,
        "topup_max_minor": account.topup_max_minor,
        "auto_recharge": {
            "state": _auto_recharge_state(account),
            "mode": ar.mode,
            "threshold_minor": ar.threshold_minor,
            "amount_minor": ar.amount_minor,
            "target_minor": ar.target_minor,
            "monthly_cap_minor": ar.monthly_cap_minor,
        },
        "monthly_budget_millicredits": account.monthly_budget,
        "alert_levels": alert_levels_json(account),
        "alert_channel_id": account.alert_channel_id,
        "billing_admins": list(account.billing_admins or []),
        "agents": [agent_json(a) for a in view.agents],
    }


def _show(account_id: int, *, as_json: bool = False) -> None:
    def read(session):  # noqa: ANN001, ANN202
        account = session.get(Account, account_id)
        return account, accounts_service.balance(session, account_id)

    account, view = run(read)
    if as_json:
        emit_json(account_json(account, view))
        return
    console.print(
        f"[bold]{escape(view.name)}[/bold] (account {view.account_id}, {view.currency}, {account.timezone})"
    )
    console.print(
        f"Plan credits: {format_credits(view.plan_balance)} left of {format_credits(view.plan_grant)}"
        f" this cycle (since {view.cycle_start})"
    )
    console.print(
        f"Wallet: {format_credits(view.wallet_balance)} credits"
        f" ({format_money(view.wallet_value_minor, view.currency)})"
    )
    console.print(f"Next cycle renewal: {_renewal_text(view.next_renewal_at, account.timezone)}")
    console.print(
        f"Rates: {format_credits(account.call_minute_rate)} a call minute"
        f" ({'per second' if account.per_second_billing else 'per started minute'}),"
        f" {format_credits(account.message_rate)} a message;"
        f" {account.credits_per_unit} credits per {format_money(10 ** currency_exponent(account.currency), account.currency)}"
    )
    money = account.currency
    console.print(
        f"Top-ups: {format_money(account.topup_min_minor, money)} to {format_money(account.topup_max_minor, money)}"
    )
    ar = auto_recharge_settings(account)
    what = (
        f"top up to {format_money(ar.target_minor, money)}"
        if ar.mode == "target"
        else f"add {format_money(ar.amount_minor, money)}"
    )
    console.print(
        f"Auto-recharge: {_auto_recharge_state(account)}; below {format_money(ar.threshold_minor, money)}"
        f" {what}, at most {format_money(ar.monthly_cap_minor, money)} a month"
    )
    console.print(budget_line(account))
    console.print(alert_levels_line(account))
    console.print(agents_table(view.agents))
