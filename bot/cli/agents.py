"""`creditbot agents add | update | list`."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from bot.cli.environment import console, operator, run
from bot.cli.options import account_option
from bot.cli.output import emit_json, json_option, table
from ledger import agents as agents_service
from ledger.accounts import balance, get_account
from ledger.agents import UNSET, AgentView, parse_limit
from ledger.errors import LedgerError
from ledger.units import format_credits


def register(cli: click.Group) -> None:
    cli.add_command(agents)


def _limit(value: str | None) -> object:
    if value is None:
        return UNSET
    try:
        return parse_limit(value)
    except LedgerError as exc:
        raise click.BadParameter(str(exc), param_hint="--limit") from exc


@click.group()
def agents() -> None:
    """An account's AI agents and their limits."""


@agents.command("add")
@account_option
@click.argument("name")
@click.option(
    "--behaviour",
    type=click.Choice(["stop", "use_balance"]),
    default="stop",
    show_default=True,
    help="When plan credits run out: stop, or go on from the wallet.",
)
@click.option(
    "--limit", default=None, help="Monthly spending limit in whole credits ('none' for no limit)."
)
def add(account_ref: str, name: str, behaviour: str, limit: str | None) -> None:
    """Add agent NAME to the account."""
    monthly = _limit(limit)

    def work(session):  # noqa: ANN001, ANN202
        account = get_account(session, account_ref)
        return agents_service.add_agent(
            session,
            account.id,
            name,
            behaviour=behaviour,
            monthly_limit=None if monthly is UNSET else monthly,
            actor=operator(),
        )

    agent = run(work)
    console.print(
        f"agent {agent.id} ({agent.name}) added: {agent.behaviour}, limit {_fmt_limit(agent.monthly_limit)}"
    )


@agents.command("update")
@account_option
@click.argument("agent_ref")
@click.option(
    "--behaviour",
    type=click.Choice(["stop", "use_balance"]),
    default=None,
    help="stop or use_balance.",
)
@click.option(
    "--limit", default=None, help="Monthly limit in whole credits, or 'none' to remove it."
)
@click.option("--name", default=None, help="A new name.")
def update(
    account_ref: str, agent_ref: str, behaviour: str | None, limit: str | None, name: str | None
) -> None:
    """Change AGENT's settings (id or name). A change that clears its stop reason resumes it."""
    monthly = _limit(limit)

    def work(session):  # noqa: ANN001, ANN202
        account = get_account(session, account_ref)
        return agents_service.update_agent(
            session,
            account.id,
            agent_ref,
            behaviour=behaviour if behaviour is not None else UNSET,
            monthly_limit=monthly,
            name=name if name is not None else UNSET,
            actor=operator(),
        )

    agent, resumed = run(work)
    console.print(
        f"agent {agent.id} ({agent.name}): {agent.behaviour}, limit {_fmt_limit(agent.monthly_limit)}, "
        f"{agent.status}{' (' + agent.stop_reason + ')' if agent.stop_reason else ''}"
        + (" - resumed" if resumed else "")
    )


@agents.command("list")
@account_option
@json_option
def list_(account_ref: str, as_json: bool) -> None:
    """Every agent of the account with status, reason, month spend and limit."""
    agents_now = run(lambda s: balance(s, get_account(s, account_ref).id).agents)
    if as_json:
        emit_json([agent_json(a) for a in agents_now])
        return
    console.print(agents_table(agents_now))


def agent_json(agent: AgentView) -> dict[str, Any]:
    """An agent for scripts: exactly what the agent API answers for it."""
    from bot.http.api.schemas import AgentOut

    return AgentOut.of(agent).model_dump()


def agents_table(agents_now: list[AgentView]) -> Table:
    out = table("id", "agent", "status", "reason", "behaviour", "month spend", "limit")
    for a in agents_now:
        out.add_row(
            str(a.id), escape(a.name), a.status, a.stop_reason or "", a.behaviour,
            format_credits(a.month_spend), _fmt_limit(a.monthly_limit),
        )  # fmt: skip
    return out


def _fmt_limit(limit: int | None) -> str:
    return format_credits(limit) if limit else "none"
