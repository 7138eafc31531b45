"""Publish the dashboard when someone opens the Home tab (a workspace with no account
sees how to link one)."""

from __future__ import annotations

from typing import Any

from slack_bolt import BoltContext
from slack_sdk import WebClient

from bot.slack.bolt_context import app_context
from bot.slack.home import publish_home


def app_home_opened(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    if event.get("tab", "home") != "home":
        return
    publish_home(app_context(context), client, context.team_id, event["user"], opened=True)
