"""The Bolt app factory: one workspace with SLACK_BOT_TOKEN, or many through Slack's OAuth
install flow with the installations stored in creditbot's database.

Listeners run to the end inside `dispatch` (`process_before_response`), so a lazy listener
starts after its listener is done; Slack is answered earlier, at `ack()`, by the transport
(bot/slack/answering.py). Requests over HTTP and lazy listeners run on the app's
`listener_executor`."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from bot.config import Settings
from bot.context import AppContext
from bot.slack.bolt_context import app_context_middleware
from bot.slack.clients import make_client, oauth_mode
from bot.slack.errors import report_error
from bot.slack.installations import installation_store
from bot.slack.listeners import register_listeners

log = logging.getLogger(__name__)

#: The bot scopes creditbot needs, and no more (keep manifest.yml in step).
BOT_SCOPES = ["commands", "chat:write", "chat:write.public", "users:read"]
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
#: Slack requests at work at once; each holds a thread from its arrival to the end of its
#: listener (later ones wait, unacknowledged, so this stays well above what Slack sends).
WORKER_THREADS = 32


def configured(settings: Settings, *, socket_mode: bool = False) -> str | None:
    """None when Slack can run; otherwise what is missing, in words."""
    if not socket_mode and not settings.slack_signing_secret:
        return "SLACK_SIGNING_SECRET is not set"
    if socket_mode and not settings.slack_app_token:
        return "SLACK_APP_TOKEN is not set"
    if not settings.slack_bot_token and not oauth_mode(settings):
        return "set SLACK_BOT_TOKEN, or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET for OAuth installs"
    if oauth_mode(settings) and not settings.creditbot_encryption_keys:
        return "CREDITBOT_ENCRYPTION_KEYS is not set (OAuth installs keep their tokens encrypted)"
    return None


def create_slack_app(context: AppContext, *, socket_mode: bool = False) -> App:
    """The Bolt app with every creditbot listener. HTTP mode verifies Slack's signature on
    each request; Socket Mode (SLACK_APP_TOKEN) needs no public URL."""
    settings = context.settings
    missing = configured(settings, socket_mode=socket_mode)
    if missing:
        raise RuntimeError(f"Slack is not configured: {missing}.")
    common: dict[str, Any] = {
        "name": "creditbot",
        "signing_secret": settings.slack_signing_secret or "unused-in-socket-mode",
        "request_verification_enabled": not socket_mode,
        "process_before_response": True,
        "listener_executor": ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="slack"),
        "logger": log,
    }
    if oauth_mode(settings):
        store = installation_store(context)
        app = App(
            client=make_client(settings),
            installation_store=store,
            oauth_settings=OAuthSettings(
                client_id=settings.slack_client_id,
                client_secret=settings.slack_client_secret,
                scopes=BOT_SCOPES,
                installation_store=store,
                state_store=SQLAlchemyOAuthStateStore(
                    expiration_seconds=600, engine=context.engine, logger=log
                ),
                install_path=INSTALL_PATH,
                redirect_uri_path=REDIRECT_PATH,
                redirect_uri=settings.public_url.rstrip("/") + REDIRECT_PATH,
            ),
            **common,
        )
    else:
        app = App(
            token_verification_enabled=False,  # start even while Slack is unreachable
            client=make_client(settings, settings.slack_bot_token),
            **common,
        )

    app.use(app_context_middleware(context))
    register_listeners(app)
    app.error(report_error)
    return app
