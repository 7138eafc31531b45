"""`creditbot` commands of the slack part (see its issue)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Add this part's commands to `cli`."""
