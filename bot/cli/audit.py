"""`creditbot audit`: who changed which setting of an account, from where, and when."""

from __future__ import annotations

import json

import click
from rich.markup import escape

from bot.cli.environment import console, run
from bot.cli.options import account_option
from bot.cli.output import emit_json, json_option, local_time, table
from ledger.accounts import get_account
from ledger.audit import MAX_LIMIT, list_events


def register(cli: click.Group) -> None:
    cli.add_command(audit)


def _values(values: dict[str, object]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in values.items())


@click.command("audit")
@account_option
@click.option(
    "--limit", type=click.IntRange(1, MAX_LIMIT), default=50, show_default=True,
    help="How many of the latest changes.",
)  # fmt: skip
@json_option
def audit(account_ref: str, limit: int, as_json: bool) -> None:
    """The account's settings changes, newest first: when, who (Slack user, CLI operator or
    API key), from where, what, and the values before and after."""

    def read(session):  # noqa: ANN001, ANN202
        account = get_account(session, account_ref)
        return account.timezone, list_events(session, account.id, limit=limit)

    tz, events = run(read)
    if as_json:
        emit_json(
            [
                {"id": e.id, "at": e.at, "actor_kind": e.actor_kind, "actor": e.actor,
                 "source": e.source, "action": e.action, "subject": e.subject,
                 "before": e.before, "after": e.after}
                for e in events
            ]
        )  # fmt: skip
        return
    out = table("when", "who", "from", "what", "before", "after")
    for e in events:
        what = e.action + (f" {e.subject}" if e.subject else "")
        who = f"{e.actor} ({e.actor_kind.replace('_', ' ')})"
        out.add_row(
            local_time(e.at, tz), escape(who), e.source, escape(what),
            escape(_values(e.before)), escape(_values(e.after)),
        )  # fmt: skip
    console.print(out)
    if not events:
        console.print("No settings changes recorded yet.")
