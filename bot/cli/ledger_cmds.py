"""`creditbot ledger verify | export`.

Both read the journal in chunks (flat memory however long it is) and show a progress bar
when run on a terminal (on stderr, so an export to stdout stays clean CSV).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bot.cli.environment import console, run
from bot.cli.output import emit_json, json_option
from ledger.accounts import get_account
from ledger.statement import write_csv
from ledger.usage_check import UsageMismatch
from ledger.verify import Mismatch, verify

#: The figures of a usage rollup row, as --json names them.
_USAGE = ("quantity", "from_plan_millicredits", "from_wallet_millicredits")


def register(cli: click.Group) -> None:
    cli.add_command(ledger)


@click.group()
def ledger() -> None:
    """The journal: checks and statements."""


@contextmanager
def progress_bar(what: str) -> Iterator[Callable[[int, int], None] | None]:
    """A `progress(done, total)` that draws a bar on the terminal, or None off one."""
    terminal = Console(stderr=True)
    if not terminal.is_terminal:
        yield None
        return
    columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    # Not redirecting stdout: rich would route an export's CSV to the bar's stderr.
    with Progress(
        *columns, console=terminal, transient=True, redirect_stdout=False, redirect_stderr=False
    ) as bar:
        task = bar.add_task(what, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@ledger.command("verify")
@click.option("--account", "account_ref", default=None, help="Only this account.")
@json_option
def verify_cmd(account_ref: str | None, as_json: bool) -> None:
    """Check that every balance equals the sum of its postings and the usage rollup equals the
    journal. Exits 1 naming each account that differs."""

    with progress_bar("checking transfers") as progress:

        def work(session):  # noqa: ANN001, ANN202
            account_id = get_account(session, account_ref).id if account_ref else None
            return verify(session, account_id, progress=progress)

        problems = run(work)
    if as_json:
        emit_json(
            {
                "ok": not problems,
                "mismatches": [_mismatch_json(p) for p in problems],
            }
        )  # fmt: skip
        if problems:
            sys.exit(1)
        return
    if problems:
        for problem in problems:
            click.echo(f"MISMATCH {problem}", err=True)
        sys.exit(1)
    console.print("ledger ok: every balance equals its postings, and usage equals the journal")


def _mismatch_json(p: Mismatch | UsageMismatch) -> dict[str, object]:
    if isinstance(p, Mismatch):
        return {"account_id": p.account_id, "account_name": p.account_name, "book": p.book,
                "cached_millicredits": p.cached, "posted_millicredits": p.posted}  # fmt: skip
    # a usage rollup row that differs from the journal
    return {"account_id": p.account_id, "book": "usage_rollup", "day": p.day.isoformat(),
            "agent_id": p.agent_id, "unit": p.unit,
            "rollup": dict(zip(_USAGE, p.rollup, strict=True)),
            "journal": dict(zip(_USAGE, p.journal, strict=True))}  # fmt: skip


@ledger.command("export")
@click.option("--account", "account_ref", required=True, help="Account id, Slack team id or name.")
@click.option("--format", "fmt", type=click.Choice(["csv"]), default="csv", show_default=True)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="File (default: stdout).",
)
def export(account_ref: str, fmt: str, output: str | None) -> None:
    """A statement of the account: every entry, its amounts per source, running balances."""
    with progress_bar("writing entries") as progress:
        if output:
            with open(output, "w", encoding="utf-8", newline="") as fh:
                run(lambda s: write_csv(s, get_account(s, account_ref).id, fh, progress=progress))
        else:
            run(
                lambda s: write_csv(
                    s, get_account(s, account_ref).id, sys.stdout, progress=progress
                )
            )
