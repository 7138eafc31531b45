"""How read commands print: a table for people, or `--json` for scripts.

JSON carries full values (nothing cut or rounded): amounts as integers named for their
unit (`_millicredits`, `_minor` with the currency), instants as ISO 8601 in UTC, and the
account's local dates beside them. Tables fold long values onto more lines instead of
cutting them with "…", so a URL or an error can still be copied whole.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import Enum
from typing import Any

import click
from rich.table import Table

from ledger.cycles import zone

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (full values, for scripts)."
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON")


def emit_json(data: Any) -> None:
    """`data` as indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2, default=_plain, ensure_ascii=False))


def table(*columns: str, title: str | None = None) -> Table:
    """A table whose cells fold rather than being cut short."""
    out = Table(title=title)
    for column in columns:
        out.add_column(column, overflow="fold")
    return out


def local_time(value: datetime | None, tz: str) -> str:
    """An instant as the account reads it: its local date and time, and the zone."""
    if value is None:
        return ""
    local = value.astimezone(zone(tz))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def local_day(value: datetime | None, tz: str) -> date | None:
    """The account's calendar day of an instant (a renewal at local midnight is that day)."""
    return value.astimezone(zone(tz)).date() if value is not None else None
