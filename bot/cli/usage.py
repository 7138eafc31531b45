"""`creditbot usage`: what an account used, by agent, local day and unit, plan vs wallet,
as a table, JSON (the same body as GET /v1/usage) or CSV; answered from the usage rollup."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import date

import click
from rich.table import Table

from bot.cli.environment import console, run
from bot.cli.options import account_option
from bot.http.api.schemas import UsageOut
from ledger.accounts import get_account
from ledger.units import format_credits
from ledger.usage import GROUPS, UsageReport, UsageRow, usage_report

COLUMNS = ("agent", "day", "unit", "messages", "call_minutes", "from_plan", "from_wallet", "total")


def register(cli: click.Group) -> None:
    """Add this part's commands to `cli`."""
    cli.add_command(usage_cmd)


def _groups(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    groups = [g.strip() for value in values for g in value.split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise click.BadParameter(f"{unknown[0]!r}: use agent, day and/or unit.")
    return groups or list(GROUPS)


@click.command("usage")
@account_option
@click.option(
    "--from",
    "start",
    type=click.DateTime(["%Y-%m-%d"]),
    help="First local day (default: 30 days ago).",
)
@click.option(
    "--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Last local day (default: today)."
)
@click.option(
    "--by",
    "group_by",
    multiple=True,
    callback=_groups,
    help="Group by agent, day and/or unit (repeat or comma-separate; default all three).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
def usage_cmd(
    account_ref: str, start: date | None, end: date | None, group_by: list[str], fmt: str
) -> None:
    """Usage of an account by agent, day and unit: messages, call minutes, and the credits
    taken from plan credits and the wallet (net of refunds). Days are the account's local days."""

    def work(session):  # noqa: ANN001, ANN202
        account = get_account(session, account_ref)
        return account.name, usage_report(
            session,
            account.id,
            start.date() if start else None,
            end.date() if end else None,
            group_by,
        )

    name, report = run(work)
    if fmt == "json":
        body = UsageOut.of(report).model_dump(mode="json", by_alias=True)
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
    elif fmt == "csv":
        sys.stdout.write(usage_csv(report))
    else:
        console.print(usage_table(name, report))


def _cells(row: UsageRow) -> list[str]:
    return [
        row.agent or "",
        row.day.isoformat() if row.day else "",
        row.unit or "",
        str(row.messages),
        str(row.call_minutes),
        format_credits(row.from_plan),
        format_credits(row.from_wallet),
        format_credits(row.total),
    ]


def usage_table(name: str, report: UsageReport) -> Table:
    shown = [c for c in COLUMNS if c not in GROUPS or c in report.group_by]
    table = Table(
        title=f"Usage of {name}, {report.start} to {report.end} ({report.timezone}), credits"
    )
    for column in shown:
        table.add_column(column, justify="left" if column in GROUPS else "right")
    picks = [COLUMNS.index(c) for c in shown]
    for row in [*report.rows, report.total]:
        cells = _cells(row)
        if row is report.total:
            cells[0] = "total"
        table.add_row(
            *(cells[i] for i in picks), end_section=row is report.rows[-1] if report.rows else False
        )
    return table


def usage_csv(report: UsageReport) -> str:
    """One line per group; credits as decimals ('12.5'), as in statements."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in report.rows:
        writer.writerow(
            [cell.replace(",", "") if i >= 5 else cell for i, cell in enumerate(_cells(row))]
        )
    return out.getvalue()
