"""The `creditbot` command: serve, migrate, accounts, agents, wallet, ledger, and more."""

from __future__ import annotations

import click

from bot.cli import (
    accounts,
    agents,
    api_keys,
    core,
    ledger_cmds,
    payments,
    scheduler,
    slack,
    usage,
    wallet,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """creditbot: a Slack bot and credits ledger for teams that run AI agents.

    Configuration comes from environment variables (DATABASE_URL, SLACK_*, STRIPE_*, ...);
    see the README.
    """


for part in (
    core,
    accounts,
    agents,
    wallet,
    ledger_cmds,
    usage,
    api_keys,
    slack,
    payments,
    scheduler,
):
    part.register(cli)


def main() -> None:
    cli(prog_name="creditbot")
