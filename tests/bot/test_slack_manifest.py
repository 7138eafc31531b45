"""manifest.yml creates the app creditbot's code expects: same commands, events, scopes
and request URLs."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.slack.app import BOT_SCOPES, INSTALL_PATH, REDIRECT_PATH

ROOT = Path(__file__).resolve().parents[2]


def test_manifest_matches_the_app():
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    features, settings = manifest["features"], manifest["settings"]
    commands = {c["command"]: c for c in features["slash_commands"]}
    assert set(commands) == {"/balance", "/topup", "/usage"}
    assert commands["/topup"]["usage_hint"]
    assert all(c["url"] == "https://YOUR-HOST/slack/events" for c in commands.values())
    assert settings["interactivity"] == {
        "is_enabled": True,
        "request_url": "https://YOUR-HOST/slack/events",
        # the agent select searches agents by name beyond 100 (external_select)
        "message_menu_options_url": "https://YOUR-HOST/slack/events",
    }
    assert settings["event_subscriptions"]["bot_events"] == [
        "app_home_opened",
        "app_uninstalled",
        "tokens_revoked",
    ]
    assert features["app_home"]["home_tab_enabled"] is True
    assert manifest["oauth_config"]["scopes"]["bot"] == BOT_SCOPES
    assert manifest["oauth_config"]["redirect_urls"] == ["https://YOUR-HOST" + REDIRECT_PATH]
    assert INSTALL_PATH == "/slack/install"
    assert "/slack/install" in (ROOT / "docs" / "slack.md").read_text()
