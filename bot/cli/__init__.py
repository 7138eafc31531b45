"""The `creditbot` command: serve, migrate, accounts, agents, wallet, ledger, and more."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.exc import InterfaceError, OperationalError

from bot.cli import (
    accounts,
    agents,
    alerts,
    api_keys,
    audit,
    core,
    doctor,
    ledger_cmds,
    outbound,
    payments,
    scheduler,
    slack,
    spend_controls,
    usage,
    wallet,
)
from bot.cli.environment import DatabaseNotReady
from bot.database import first_line


class CreditbotGroup(click.Group):
    """A database that stops answering mid-command is one clear line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (OperationalError, InterfaceError) as exc:
            raise DatabaseNotReady(
                f"the database stopped answering: {first_line(exc)}",
                "check that it runs and DATABASE_URL names it, then run the command again",
            ) from exc


@click.group(cls=CreditbotGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="creditbot", prog_name="creditbot")
def cli() -> None:
    """creditbot: a Slack bot and credits ledger for teams that run AI agents.

    Configuration comes from environment variables (DATABASE_URL, SLACK_*, STRIPE_*, ...);
    see the README. `creditbot doctor` checks it.
    """


for part in (
    core,
    doctor,
    accounts,
    agents,
    wallet,
    ledger_cmds,
    usage,
    api_keys,
    alerts,
    outbound,
    slack,
    payments,
    scheduler,
    spend_controls,
    audit,
):
    part.register(cli)


def main() -> None:
    cli(prog_name="creditbot")
