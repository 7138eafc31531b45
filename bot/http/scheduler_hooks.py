"""Starting and stopping the scheduler with the server (issue: scheduler).

`creditbot serve` runs the scheduler in its process when RUN_SCHEDULER is true (the
default). Several replicas may all run it: a leader lock lets one of them run jobs at a
time (see bot/scheduler/leader.py). Set RUN_SCHEDULER=false where `creditbot scheduler` runs it
as a process of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bot.context import AppContext


@asynccontextmanager
async def lifespan(app: FastAPI, context: AppContext) -> AsyncIterator[None]:
    """Run the scheduler for as long as the server runs."""
    scheduler = None
    if context.settings.run_scheduler:
        from bot.scheduler.runner import Scheduler

        scheduler = Scheduler(context)
        await asyncio.to_thread(scheduler.start)
    app.state.scheduler = scheduler
    try:
        yield
    finally:
        if scheduler is not None:
            await asyncio.to_thread(scheduler.shutdown)
