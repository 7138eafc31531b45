"""The agent runtime API under /v1: agents, message charges, call minutes, the balance and
usage.

One module per resource, each with its module-level `router`; every handler is a plain
`def` (FastAPI runs it in its thread pool) that runs one ledger service for the account of
the request's API key, in one transaction (unit_of_work.py), and maps the view the ledger
answers onto a schema (schemas.py). Errors: errors.py. Amounts are integer milli-credits.
"""

from __future__ import annotations

from fastapi import FastAPI

from bot.context import AppContext
from bot.http.api import agents, balance, calls, messages, usage
from bot.http.api.errors import PREFIX, install_error_handlers
from bot.http.api.unit_of_work import UnitOfWork

ROUTERS = (agents.router, messages.router, calls.router, balance.router, usage.router)


def register(app: FastAPI, context: AppContext) -> None:
    """Add the /v1 routes and their error bodies (body limits: bot/http/body_limit.py)."""
    app.state.api_unit_of_work = UnitOfWork(context)
    for router in ROUTERS:
        app.include_router(router, prefix=PREFIX, tags=["agent runtime"])
    install_error_handlers(app)
