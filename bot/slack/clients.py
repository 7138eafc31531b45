"""Slack Web API clients: how they are made (base URL, timeouts, retries) and which bot
token speaks for a workspace. The Bolt app, the Home tab refresh and alert delivery all
get their clients here, so none of them needs the others."""

from __future__ import annotations

import hashlib
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler

from bot.config import Settings
from bot.context import AppContext
from bot.slack.installations import installation_store
from ledger.db import transaction
from ledger.models.slack import SlackUninstall
from ledger.slack_workspaces import silencing_uninstall

#: A rate limit longer than this is left to the outbox's own retry instead of sleeping.
MAX_RATE_LIMIT_SLEEP = 5

#: The Web API client class every client here is made from. The simulation (sim/) swaps in
#: a subclass whose requests an in-process fake Slack answers; nothing else changes it.
client_class: type[WebClient] = WebClient


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
    return client_class(token=token, base_url=base, timeout=10, retry_handlers=retry_handlers())


def oauth_mode(settings: Settings) -> bool:
    """Many workspaces through OAuth installs, rather than one with SLACK_BOT_TOKEN."""
    return bool(settings.slack_client_id and settings.slack_client_secret)


def token_digest(token: str) -> str:
    """How a bot token is remembered without keeping it (SHA-256, hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _silencing(context: AppContext, team_id: str | None) -> SlackUninstall | None:
    """The uninstall (or revoked bot token) that keeps creditbot from posting there."""
    settings = context.settings
    digest = None if oauth_mode(settings) else token_digest(settings.slack_bot_token)
    return transaction(
        context.sessions,
        lambda s: silencing_uninstall(s, team_id=team_id, token_digest=digest),
    )


def client_for_team(context: AppContext, team_id: str | None) -> WebClient | None:
    """A bot client for the workspace: the one bot token, or the installed workspace's.
    None when there is none, or the workspace uninstalled the app or revoked the token."""
    settings = context.settings
    if oauth_mode(settings):
        if not team_id:
            return None
        bot = installation_store(context).find_bot(enterprise_id=None, team_id=team_id)
        if bot is None or not bot.bot_token:
            return None
        return make_client(settings, bot.bot_token)
    if not settings.slack_bot_token or _silencing(context, team_id) is not None:
        return None
    return make_client(settings, settings.slack_bot_token)


def why_no_client(context: AppContext, team_id: str | None) -> str:
    """Why `client_for_team` gave no client, in words for `alerts list` and the logs."""
    gone = _silencing(context, team_id)
    if gone is not None:
        what = "uninstalled the app" if gone.event == "app_uninstalled" else "revoked its token"
        return (
            f"Slack workspace {gone.team_id} {what} on {gone.at:%Y-%m-%d %H:%M} UTC:"
            " alerts wait until it installs creditbot again"
        )
    if oauth_mode(context.settings):
        if not team_id:
            return "the account has no Slack workspace: link one with `creditbot accounts link`"
        return f"Slack workspace {team_id} has not installed creditbot (/slack/install)"
    return "Slack is not configured: set SLACK_BOT_TOKEN (or OAuth installs)"
