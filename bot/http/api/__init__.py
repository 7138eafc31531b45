"""The API under /v1: for agent runtimes, agents, message charges, call minutes, the balance
and usage; for keys of the admin scope also the account's settings, auto-recharge, budget,
alert levels, top-ups, recharge attempts and audit trail.

One module per resource, each with its module-level `router` of `ApiKeyRoute`s (the key is
checked first: authentication.py); every handler is an `async def` that awaits one ledger
service for the account of the request's API key, run by the journal's writer in the
transaction of a batch (ledger/journal/writer.py), and maps the view the ledger answers
onto a schema (schemas.py). Errors: errors.py. Amounts are integer milli-credits. The
charge routes (messages, call start, call minutes) are also served below FastAPI by
fast_routes.py, which the app installs as a middleware (bot/http/app.py).
"""

from __future__ import annotations

from fastapi import FastAPI

from bot import metrics
from bot.context import AppContext
from bot.http.api import account, agents, audit, balance, calls, messages, payments, usage
from bot.http.api.authentication import ApiAccess, document_api_keys
from bot.http.api.errors import PREFIX, install_error_handlers
from ledger.journal.writer import JournalWriter

# The hot paths first: a request is matched against the routes in this order.
ROUTERS = (messages.router, calls.router, balance.router, agents.router, usage.router)
#: Routes for keys of the admin scope (docs/api.md "Admin API").
ADMIN_ROUTERS = (account.router, payments.router, audit.router)


def register(app: FastAPI, context: AppContext) -> None:
    """Add the /v1 routes and their error bodies (body limits: bot/http/body_limit.py)."""
    writer = JournalWriter(context.engine, on_batch=metrics.BATCH_SIZE.observe)
    app.state.api = ApiAccess(writer, context)
    for router in ROUTERS:
        app.include_router(router, prefix=PREFIX, tags=["agent runtime"])
    for router in ADMIN_ROUTERS:
        app.include_router(router, prefix=PREFIX, tags=["admin"])
    install_error_handlers(app)
    document_api_keys(app)


def close(app: FastAPI) -> None:
    """Finish the work queued to the journal's writer and stop its threads."""
    app.state.api.writer.close()
