"""`creditbot accounts budget | alert-levels`: the account's monthly budget and its alert
levels, and how `accounts show` prints them."""

from __future__ import annotations

from typing import Any

import click

from bot.cli.environment import console, operator, run
from bot.cli.output import emit_json, json_option
from ledger.accounts import get_account
from ledger.alert_levels import alert_levels, parse_percents, parse_wallet_levels, set_alert_levels
from ledger.budget import BudgetView, budget_view, parse_budget, set_budget
from ledger.errors import FieldError
from ledger.models import Account
from ledger.units import format_credits


def register(cli: click.Group) -> None:
    accounts = cli.commands["accounts"]
    assert isinstance(accounts, click.Group)
    accounts.add_command(budget)
    accounts.add_command(levels_command)


def _percents(levels: tuple[int, ...]) -> str:
    return ", ".join(f"{p}%" for p in levels) or "none"


def budget_line(account: Account) -> str:
    if account.monthly_budget is None:
        return "Monthly budget: none"
    return f"Monthly budget: {format_credits(account.monthly_budget)} credits, all agents together"


def alert_levels_line(account: Account) -> str:
    levels = alert_levels(account)
    wallet = ", ".join(format_credits(c) for c in levels.wallet) or "none"
    return (
        f"Alert levels: plan credits at {_percents(levels.plan)} left; wallet under {wallet}"
        f" credits; agent limits at {_percents(levels.limit)}; budget at {_percents(levels.budget)}"
    )


def alert_levels_json(account: Account) -> dict[str, list[int]]:
    levels = alert_levels(account)
    return {
        "plan_percent": list(levels.plan),
        "wallet_millicredits": list(levels.wallet),
        "limit_percent": list(levels.limit),
        "budget_percent": list(levels.budget),
    }


def _budget_json(view: BudgetView) -> dict[str, Any]:
    return {
        "monthly_budget_millicredits": view.monthly_budget,
        "month": view.month,
        "month_spend_millicredits": view.month_spend,
        "left_millicredits": view.left,
        "agents_stopped": view.agents_stopped,
    }


@click.command("budget")
@click.argument("account_ref")
@click.argument("credits", required=False)
@json_option
def budget(account_ref: str, credits: str | None, as_json: bool) -> None:
    """Show ACCOUNT's monthly budget, or set it to CREDITS ('none' removes it).

    The budget caps what all agents together spend in a calendar month (account time
    zone), plan credits and wallet alike. Reaching it stops every agent (`account_budget`);
    raising or removing it, or a new month, resumes them.
    """
    if credits is not None:
        try:
            amount = parse_budget(credits)
        except FieldError as exc:
            raise click.BadParameter(str(exc), param_hint="CREDITS") from exc

    def work(session):  # noqa: ANN001, ANN202
        account = get_account(session, account_ref)
        if credits is None:
            return budget_view(session, account.id)
        return set_budget(session, account.id, amount, actor=operator())

    view = run(work)
    if as_json:
        emit_json(_budget_json(view))
        return
    if view.monthly_budget is None:
        console.print(
            f"No monthly budget. Spent in {view.month}: {format_credits(view.month_spend)}"
        )
        return
    state = " - reached: every agent is stopped" if view.reached else ""
    console.print(
        f"Monthly budget {format_credits(view.monthly_budget)} credits; spent in {view.month}:"
        f" {format_credits(view.month_spend)}, left {format_credits(view.left or 0)}{state}"
    )


@click.command("alert-levels")
@click.argument("account_ref")
@click.option("--plan", default=None, help="Plan credits left, % of the grant: '50,20,5'.")
@click.option("--wallet", default=None, help="Wallet credits left: '1000 200' ('' for none).")
@click.option("--limit", "limit_", default=None, help="Agents' monthly limits, % spent: '80,100'.")
@click.option("--budget", "budget_", default=None, help="The monthly budget, % spent: '50,80'.")
@json_option
def levels_command(
    account_ref: str,
    plan: str | None,
    wallet: str | None,
    limit_: str | None,
    budget_: str | None,
    as_json: bool,
) -> None:
    """Show ACCOUNT's alert levels, or change those given ('' turns a kind off).

    Each level alerts once when it is crossed and again only after the balance or spend
    went back past it; a low plan or wallet lifted above all its levels says "recovered".
    """
    try:
        new = {
            "plan": None if plan is None else parse_percents(plan, "plan"),
            "wallet": None if wallet is None else parse_wallet_levels(wallet),
            "limit": None if limit_ is None else parse_percents(limit_, "limit"),
            "budget": None if budget_ is None else parse_percents(budget_, "budget"),
        }
    except FieldError as exc:
        raise click.BadParameter(str(exc), param_hint=f"--{exc.field}") from exc

    def work(session):  # noqa: ANN001, ANN202
        account = get_account(session, account_ref)
        if any(v is not None for v in new.values()):
            set_alert_levels(session, account.id, actor=operator(), **new)
        return account

    account = run(work)
    if as_json:
        emit_json(alert_levels_json(account))
        return
    console.print(alert_levels_line(account))
