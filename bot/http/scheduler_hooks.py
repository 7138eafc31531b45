"""Starting and stopping the scheduler with the server (issue: scheduler)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bot.context import AppContext


@asynccontextmanager
async def lifespan(app: FastAPI, context: AppContext) -> AsyncIterator[None]:
    """Run the scheduler for as long as the server runs."""
    yield
