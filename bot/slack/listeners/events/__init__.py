"""Events API: app_home_opened."""

from __future__ import annotations

from slack_bolt import App

from bot.slack.listeners.events.app_home import app_home_opened
from bot.slack.middleware import acknowledge


def register(app: App) -> None:
    app.event("app_home_opened", middleware=[acknowledge])(app_home_opened)
