"""Slack's request URL /slack/events, install and OAuth routes (issue: Slack app).

Bolt's sync `App` does the work off the event loop, which never waits on the database or
on Slack: /slack/events on the Slack app's own threads (a request holds one to the end of
its listener, so not Starlette's pool, which the agent API's handlers need), the install
routes in Starlette's pool. /slack/events responds as soon as the request is acknowledged
(bot/slack/answering.py); the dispatch goes on after it.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from slack_bolt import App, BoltResponse
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.concurrency import run_in_threadpool

from bot.context import AppContext
from bot.slack.answering import dispatch_answering_on_ack
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
        bolt_request = to_bolt_request(request, await request.body())
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[BoltResponse] = loop.create_future()

        def answer(response: BoltResponse) -> None:  # from the dispatching thread, once
            loop.call_soon_threadsafe(lambda: answered.done() or answered.set_result(response))

        work = loop.run_in_executor(
            slack.listener_runner.listener_executor,
            dispatch_answering_on_ack,
            slack,
            bolt_request,
            answer,
        )
        await asyncio.wait({answered, work}, return_when=asyncio.FIRST_COMPLETED)
        # The same answer either way; a dispatch that failed outright raises here.
        response = answered.result() if answered.done() else work.result()
        return to_starlette_response(response)

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
