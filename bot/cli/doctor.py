"""`creditbot doctor`: check each part of creditbot and say what to do."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from bot.cli.environment import console
from bot.cli.output import emit_json, json_option
from bot.context import build_context
from bot.doctor import FAIL, OK, WARN, diagnose, failed

MARKS = {OK: "[green]✔[/green]", WARN: "[yellow]![/yellow]", FAIL: "[red]✘[/red]"}


def register(cli: click.Group) -> None:
    """Add this part's commands to `cli`."""
    cli.add_command(doctor)


@click.command()
@json_option
def doctor(as_json: bool) -> None:
    """Check the database, Slack, Stripe, PUBLIC_URL, the scheduler and the alert outbox,
    and say what to do about each problem. Exits 1 when any check fails."""
    context = build_context()
    try:
        findings = diagnose(context)
    finally:
        context.engine.dispose()
    problems = failed(findings)
    if as_json:
        emit_json({"ok": not problems, "findings": [f.as_dict() for f in findings]})
    else:
        out = Table(box=None, show_header=False, pad_edge=False)
        out.add_column("", no_wrap=True)
        out.add_column("part", no_wrap=True, style="bold")
        out.add_column("finding", overflow="fold")
        for f in findings:
            text = escape(f.message) + (f"\n[dim]→ {escape(f.hint)}[/dim]" if f.hint else "")
            out.add_row(MARKS[f.status], f.part, text)
        console.print(out)
        warnings = sum(f.status == WARN for f in findings)
        console.print(
            f"{len(problems)} problem(s), {warnings} warning(s)"
            if problems or warnings
            else "everything checked is fine"
        )
    if problems:
        raise SystemExit(1)
