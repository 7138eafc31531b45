"""The ASGI application served by `creditbot serve` under uvicorn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from bot import metrics, web
from bot.context import AppContext, build_context
from bot.http import (
    api,
    metrics_route,
    scheduler_hooks,
    slack_routes,
    stripe_routes,
    usage_routes,
)
from bot.http.api import fast_routes
from bot.http.body_limit import BodyLimits
from bot.http.errors import error_response, install_error_handlers
from bot.http.heap import startup_heap_frozen
from bot.http.request_ids import RequestIds
from ledger.db import ping

log = logging.getLogger(__name__)


def healthz(request: Request) -> JSONResponse:
    """Whether the database answers (for load balancers and `make run`). A failure says
    "database unavailable" and nothing more: the driver's words, which may quote SQL, a
    host or a path, go to the log."""
    engine = request.app.state.context.engine
    try:
        ping(engine)
    except Exception as exc:  # noqa: BLE001 - health reports any failure
        log.warning("/healthz: the database does not answer: %s", " ".join(str(exc).split()))
        return error_response(
            503, "database_unavailable", "database unavailable", {"Retry-After": "5"}
        )
    return JSONResponse({"status": "ok", "database": engine.dialect.name})


def create_app(context: AppContext | None = None) -> FastAPI:
    """Build the app. Each part registers its routes; `context` is shared by all of them."""
    context = context or build_context()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with scheduler_hooks.lifespan(app, context):
                with startup_heap_frozen():  # started: what exists now lives as long
                    yield
        finally:
            api.close(app)  # what is queued to the journal's writer is finished first
            metrics.process_exited()

    # Swagger UI and ReDoc from creditbot's own static files, not a CDN: /docs works offline.
    app = FastAPIOffline(
        title="creditbot",
        version="1.0.0",
        description="Credits ledger for AI agents: authorise and charge work, read balances.",
        lifespan=lifespan,
        # No OpenTelemetry provider is configured, so FastAPI's telemetry would only cost
        # every request a check of the global providers.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.context = context
    app.add_api_route(
        "/healthz", healthz, methods=["GET"], tags=["health"], include_in_schema=False
    )
    api.register(app, context)
    slack_routes.register(app, context)
    stripe_routes.register(app, context)
    usage_routes.register(app, context)
    web.register(app, context)
    metrics_route.register(app, context)
    install_error_handlers(app)  # after the API's: these are the app-wide ones
    # Outermost (inside Starlette's error middleware): no route reads a body it refuses.
    app.add_middleware(BodyLimits, read_timeout=context.settings.http_read_timeout)
    # Around that: every answer, refusals included, carries its request id.
    app.add_middleware(RequestIds)
    # In front of all of it: the hot charge routes, which do what the layers above do for
    # them in one place, below FastAPI's request machinery (bot/http/api/fast_routes.py).
    fast_routes.install(app, context.settings.http_read_timeout)
    return app
