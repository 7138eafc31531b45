"""Slack's request URL /slack/events, install and OAuth routes (issue: Slack app).

Bolt's sync `App` does the work off the event loop, which never waits on the database or
on Slack: /slack/events on the Slack app's own threads (a request holds one to the end of
its listener, so not Starlette's pool, which the agent API's handlers need), the install
routes in Starlette's pool. /slack/events responds as soon as the request is acknowledged
(bot/slack/answering.py); the dispatch goes on after it.

Nothing reads a request to /slack/events before its signature holds (bot/slack/signature.py):
an unsigned or stale request is a quiet 401, a signed one Bolt cannot read a 400, and no
answer of these routes has any shape but `{"error": {"code", "message"}}` (bot/http/errors.py).
"""

from __future__ import annotations

import asyncio
import json
import logging

from fastapi import FastAPI, Request, Response
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.concurrency import run_in_threadpool

from bot.context import AppContext
from bot.http.errors import HTTP_CODES, error_response
from bot.slack.answering import dispatch_answering_on_ack
from bot.slack.app import INSTALL_PATH, REDIRECT_PATH, configured, create_slack_app
from bot.slack.envelope import envelope_problem
from bot.slack.signature import signature_refusal
from ledger.tracing import bind

log = logging.getLogger(__name__)


def read_signed(request: Request, body: bytes) -> BoltRequest | str:
    """The request as Bolt reads it, once its signature held; or why it cannot be read.
    (Slack sends UTF-8 JSON or a form whose `payload` is a JSON object.)"""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    try:
        bolt_request = to_bolt_request(request, body)
    except Exception as exc:  # noqa: BLE001 - whatever Bolt's parser trips on is a bad body
        return f"Bolt cannot read the body ({type(exc).__name__})"
    problem = envelope_problem(bolt_request.body)
    return bolt_request if problem is None else problem


def http_answer(response: BoltResponse) -> Response:
    """Bolt's answer; its errors (`{"error": "unhandled request"}` and the like) in the one
    error shape."""
    if response.status < 400:
        return to_starlette_response(response)
    try:
        said = json.loads(response.body).get("error")
    except (ValueError, AttributeError):
        said = None
    message = said if isinstance(said, str) and said else "Slack request refused."
    code = "unhandled_request" if response.status == 404 else HTTP_CODES.get(response.status)
    return error_response(response.status, code or "slack_error", message[:200])


def register(app: FastAPI, context: AppContext) -> None:
    """Add the /slack routes."""
    missing = configured(context.settings)
    slack: App | None = None if missing else create_slack_app(context)
    app.state.slack_app = slack

    def not_configured() -> Response:
        return error_response(503, "slack_not_configured", f"Slack is not configured: {missing}.")

    def oauth_not_configured() -> Response:
        return error_response(
            404,
            "oauth_not_configured",
            "Set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET to install through OAuth.",
        )

    @app.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        if slack is None:
            return not_configured()
        body = await request.body()  # at most its limit (bot/http/body_limit.py)
        refusal = signature_refusal(context.settings.slack_signing_secret, body, request.headers)
        if refusal is not None:
            log.warning("refused a Slack request: %s", refusal)
            return error_response(401, "invalid_signature", f"Not a Slack request: {refusal}.")
        bolt_request = read_signed(request, body)
        if isinstance(bolt_request, str):
            log.warning("refused a signed Slack request: %s", bolt_request)
            return error_response(400, "malformed_request", f"Unreadable request: {bolt_request}.")
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[BoltResponse] = loop.create_future()

        def answer(response: BoltResponse) -> None:  # from the dispatching thread, once
            loop.call_soon_threadsafe(lambda: answered.done() or answered.set_result(response))

        work = loop.run_in_executor(
            slack.listener_runner.listener_executor,
            bind(dispatch_answering_on_ack),  # the listener's log lines keep the request id
            slack,
            bolt_request,
            answer,
        )
        await asyncio.wait({answered, work}, return_when=asyncio.FIRST_COMPLETED)
        # The same answer either way; a dispatch that failed outright raises here.
        response = answered.result() if answered.done() else work.result()
        return http_answer(response)

    @app.get(INSTALL_PATH, include_in_schema=False)
    async def slack_install(request: Request) -> Response:
        if slack is None:
            return not_configured()
        if slack.oauth_flow is None:
            return oauth_not_configured()
        bolt_response = await run_in_threadpool(
            slack.oauth_flow.handle_installation, to_bolt_request(request, b"")
        )
        return to_starlette_response(bolt_response)

    @app.get(REDIRECT_PATH, include_in_schema=False)
    async def slack_oauth_redirect(request: Request) -> Response:
        if slack is None:
            return not_configured()
        if slack.oauth_flow is None:
            return oauth_not_configured()
        bolt_response = await run_in_threadpool(
            slack.oauth_flow.handle_callback, to_bolt_request(request, b"")
        )
        return to_starlette_response(bolt_response)
