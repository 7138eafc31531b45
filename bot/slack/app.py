"""The Bolt app factory: one workspace with SLACK_BOT_TOKEN, or many through Slack's OAuth
install flow with the installations stored in creditbot's database."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from bot.config import Settings
from bot.context import AppContext
from bot.slack.deps import KEY
from ledger.db import transaction
from ledger.slack_workspaces import account_for_install

log = logging.getLogger(__name__)

#: The bot scopes creditbot needs, and no more (keep manifest.yml in step).
BOT_SCOPES = ["commands", "chat:write", "chat:write.public", "users:read"]
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
#: A rate limit longer than this is left to the outbox's own retry instead of sleeping.
MAX_RATE_LIMIT_SLEEP = 5


class ShortRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Retries a 429 after its Retry-After, unless Slack asks for a long wait."""

    def _can_retry(
        self, *, state: Any, request: Any, response: Any = None, error: Any = None
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        for key, value in response.headers.items():
            if key.lower() == "retry-after":
                raw = value[0] if isinstance(value, list) else value
                try:
                    return int(raw) <= MAX_RATE_LIMIT_SLEEP
                except (TypeError, ValueError):
                    return False
        return True


def retry_handlers() -> list[RetryHandler]:
    """slack_sdk retries: dropped connections, 500/503 and short rate limits, once each."""
    backoff = BackoffRetryIntervalCalculator(backoff_factor=0.3)
    return [
        ConnectionErrorRetryHandler(max_retry_count=1, interval_calculator=backoff),
        ServerErrorRetryHandler(max_retry_count=1, interval_calculator=backoff),
        ShortRateLimitRetryHandler(max_retry_count=1),
    ]


def make_client(settings: Settings, token: str | None = None) -> WebClient:
    """A Web API client on SLACK_API_URL (tests point it at a fake Slack)."""
    base = settings.slack_api_url
    if not base.endswith("/"):
        base += "/"
    return WebClient(token=token, base_url=base, timeout=10, retry_handlers=retry_handlers())


def oauth_mode(settings: Settings) -> bool:
    return bool(settings.slack_client_id and settings.slack_client_secret)


def configured(settings: Settings, *, socket_mode: bool = False) -> str | None:
    """None when Slack can run; otherwise what is missing, in words."""
    if not socket_mode and not settings.slack_signing_secret:
        return "SLACK_SIGNING_SECRET is not set"
    if socket_mode and not settings.slack_app_token:
        return "SLACK_APP_TOKEN is not set"
    if not settings.slack_bot_token and not oauth_mode(settings):
        return "set SLACK_BOT_TOKEN, or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET for OAuth installs"
    return None


class CreditbotInstallationStore(SQLAlchemyInstallationStore):
    """Bolt's SQLAlchemy store on creditbot's database; a workspace installing the app for
    the first time gets its own account."""

    def __init__(self, client_id: str, context: AppContext) -> None:
        super().__init__(client_id=client_id, engine=context.engine, logger=log)
        self._context = context

    def save(self, installation: Installation) -> None:
        super().save(installation)
        team_id = installation.team_id
        if team_id:
            account, created = transaction(
                self._context.sessions,
                lambda s: account_for_install(s, team_id, installation.team_name),
            )
            if created:
                log.info("workspace %s installed: new account %s", team_id, account.id)


def installation_store(context: AppContext) -> CreditbotInstallationStore:
    return CreditbotInstallationStore(context.settings.slack_client_id, context)


def client_for_team(context: AppContext, team_id: str | None) -> WebClient | None:
    """A bot client for the workspace: the one bot token, or the installed workspace's."""
    settings = context.settings
    if oauth_mode(settings):
        if not team_id:
            return None
        bot = installation_store(context).find_bot(enterprise_id=None, team_id=team_id)
        if bot is None or not bot.bot_token:
            return None
        return make_client(settings, bot.bot_token)
    if not settings.slack_bot_token:
        return None
    return make_client(settings, settings.slack_bot_token)


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
        "process_before_response": False,
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

    creditbot = context

    def attach_context(context: BoltContext, next: Callable[[], None]) -> None:  # noqa: A002
        context[KEY] = creditbot
        next()

    app.use(attach_context)

    from bot.slack.listeners import register_listeners

    register_listeners(app)
    return app
