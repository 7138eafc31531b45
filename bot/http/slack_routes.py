"""Slack's request URL /slack/events, install and OAuth routes (issue: Slack app).

Bolt's sync `App` does the work; each request is dispatched in Starlette's thread pool so
the event loop never waits on the database or on Slack. Bolt acknowledges within Slack's
3 seconds and runs the rest of a listener in its own executor.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.concurrency import run_in_threadpool

from bot.context import AppContext
from bot.slack.app import INSTALL_PATH, REDIRECT_PATH, configured, create_slack_app

log = logging.getLogger(__name__)


def register(app: FastAPI, context: AppContext) -> None:
    """Add the /slack routes."""
    missing = configured(context.settings)
    slack: App | None = None if missing else create_slack_app(context)
    app.state.slack_app = slack

    def not_configured() -> Response:
        return JSONResponse(
            {"error": "slack_not_configured", "detail": f"Slack is not configured: {missing}."},
            status_code=503,
        )

    @app.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        if slack is None:
            return not_configured()
        body = await request.body()
        bolt_response = await run_in_threadpool(slack.dispatch, to_bolt_request(request, body))
        return to_starlette_response(bolt_response)

    @app.get(INSTALL_PATH, include_in_schema=False)
    async def slack_install(request: Request) -> Response:
        if slack is None:
            return not_configured()
        if slack.oauth_flow is None:
            return JSONResponse(
                {
                    "error": "oauth_not_configured",
                    "detail": "Set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET to install through OAuth.",
                },
                status_code=404,
            )
        bolt_response = await run_in_threadpool(
            slack.oauth_flow.handle_installation, to_bolt_request(request, b"")
        )
        return to_starlette_response(bolt_response)

    @app.get(REDIRECT_PATH, include_in_schema=False)
    async def slack_oauth_redirect(request: Request) -> Response:
        if slack is None:
            return not_configured()
        if slack.oauth_flow is None:
            return JSONResponse({"error": "oauth_not_configured"}, status_code=404)
        bolt_response = await run_in_threadpool(
            slack.oauth_flow.handle_callback, to_bolt_request(request, b"")
        )
        return to_starlette_response(bolt_response)
