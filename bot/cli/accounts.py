"""`creditbot accounts create | show`."""

from __future__ import annotations

import click
from rich.table import Table

from bot.cli.environment import console, run
from bot.cli.options import CREDITS
from ledger import accounts as accounts_service
from ledger.accounts import AccountSettings
from ledger.auto_recharge import auto_recharge as auto_recharge_settings
from ledger.auto_recharge import update_auto_recharge
from ledger.errors import LedgerError, NoSavedCard
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
        )
        recharge = (recharge_threshold, recharge_amount, recharge_cap)
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
def show(account_ref: str) -> None:
    """Plan credits, wallet, next renewal and agents of ACCOUNT (id, Slack team or name)."""
    account_id = run(lambda s: accounts_service.get_account(s, account_ref).id)
    _show(account_id)


def _show(account_id: int) -> None:
    def read(session):  # noqa: ANN001, ANN202
        account = session.get(accounts_service.Account, account_id)
        return account, accounts_service.balance(session, account_id)

    account, view = run(read)
    console.print(
        f"[bold]{view.name}[/bold] (account {view.account_id}, {view.currency}, {account.timezone})"
    )
    console.print(
        f"Plan credits: {format_credits(view.plan_balance)} left of {format_credits(view.plan_grant)}"
        f" this cycle (since {view.cycle_start})"
    )
    console.print(
        f"Wallet: {format_credits(view.wallet_balance)} credits"
        f" ({format_money(view.wallet_value_minor, view.currency)})"
    )
    renewal = view.next_renewal_at.isoformat() if view.next_renewal_at else "none"
    console.print(f"Next cycle renewal: {renewal}")
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
    state = "on" if ar.enabled and not ar.paused else ("paused" if ar.enabled else "off")
    console.print(
        f"Auto-recharge: {state}; below {format_money(ar.threshold_minor, money)} add"
        f" {format_money(ar.amount_minor, money)}, at most {format_money(ar.monthly_cap_minor, money)} a month"
    )
    table = Table("id", "agent", "status", "reason", "behaviour", "month spend", "limit")
    for agent in view.agents:
        table.add_row(
            str(agent.id),
            agent.name,
            agent.status,
            agent.stop_reason or "",
            agent.behaviour,
            format_credits(agent.month_spend),
            format_credits(agent.monthly_limit) if agent.monthly_limit else "none",
        )
    console.print(table)
