"""Events API: app_home_opened; app_uninstalled and tokens_revoked."""

from __future__ import annotations

from slack_bolt import App

from bot.slack.listeners.events.app_home import app_home_opened
from bot.slack.listeners.events.uninstall import app_uninstalled, tokens_revoked
from bot.slack.middleware import acknowledge


def register(app: App) -> None:
    app.event("app_home_opened", middleware=[acknowledge])(app_home_opened)
    app.event("app_uninstalled", middleware=[acknowledge])(app_uninstalled)
    app.event("tokens_revoked", middleware=[acknowledge])(tokens_revoked)
