"""The API under /v1: for agent runtimes, agents, message charges, call minutes, the balance
and usage; for keys of the admin scope also the account's settings, auto-recharge, budget,
alert levels, top-ups, recharge attempts and audit trail.

One module per resource, each with its module-level `router`; every handler is a plain
`def` (FastAPI runs it in its thread pool) that runs one ledger service for the account of
the request's API key, in one transaction (unit_of_work.py), and maps the view the ledger
answers onto a schema (schemas.py). Errors: errors.py. Amounts are integer milli-credits.
"""

from __future__ import annotations

from fastapi import FastAPI

from bot.context import AppContext
from bot.http.api import account, agents, audit, balance, calls, messages, payments, usage
from bot.http.api.errors import PREFIX, install_error_handlers
from bot.http.api.unit_of_work import UnitOfWork

ROUTERS = (agents.router, messages.router, calls.router, balance.router, usage.router)
#: Routes for keys of the admin scope (docs/api.md "Admin API").
ADMIN_ROUTERS = (account.router, payments.router, audit.router)


def register(app: FastAPI, context: AppContext) -> None:
    """Add the /v1 routes and their error bodies (body limits: bot/http/body_limit.py)."""
    app.state.api_unit_of_work = UnitOfWork(context)
    for router in ROUTERS:
        app.include_router(router, prefix=PREFIX, tags=["agent runtime"])
    for router in ADMIN_ROUTERS:
        app.include_router(router, prefix=PREFIX, tags=["admin"])
    install_error_handlers(app)
