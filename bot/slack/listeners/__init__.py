"""Bolt listeners grouped by kind, as in Slack's bolt-python starter template: each folder
registers its own. A listener parses what Slack sent, calls the ledger, and renders; the
acknowledgement and who may do what are its middleware (bot/slack/middleware.py)."""

from __future__ import annotations

from slack_bolt import App

from bot.slack.listeners import actions, commands, events, options, views


def register_listeners(app: App) -> None:
    commands.register(app)
    actions.register(app)
    views.register(app)
    events.register(app)
    options.register(app)
