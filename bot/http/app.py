"""The ASGI application served by `creditbot serve` under uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bot.context import AppContext, build_context
from bot.http import api, scheduler_hooks, slack_routes, stripe_routes
from ledger.db import ping


def healthz(request: Request) -> JSONResponse:
    """Whether the database answers (for load balancers and `make run`)."""
    engine = request.app.state.context.engine
    try:
        ping(engine)
    except Exception as exc:  # noqa: BLE001 - health reports any failure
        return JSONResponse({"status": "error", "database": str(exc)[:200]}, status_code=503)
    return JSONResponse({"status": "ok", "database": engine.dialect.name})


def create_app(context: AppContext | None = None) -> FastAPI:
    """Build the app. Each part registers its routes; `context` is shared by all of them."""
    context = context or build_context()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with scheduler_hooks.lifespan(app, context):
            yield
        api.close(app)

    app = FastAPI(
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
    return app
