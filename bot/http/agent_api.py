"""The agent runtime API under /v1 (issue: agent runtime API)."""

from __future__ import annotations

from fastapi import FastAPI

from bot.context import AppContext


def register(app: FastAPI, context: AppContext) -> None:
    """Add the /v1 routes."""
