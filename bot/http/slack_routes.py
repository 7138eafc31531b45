"""Slack's request URL /slack/events, install and OAuth routes (issue: Slack app)."""

from __future__ import annotations

from fastapi import FastAPI

from bot.context import AppContext


def register(app: FastAPI, context: AppContext) -> None:
    """Add the /slack routes."""
