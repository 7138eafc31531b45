"""`creditbot slack preview` shows every Slack surface of an account without a workspace,
and every one of them is Block Kit that Slack accepts (slack_sdk.models' validators and
Slack's documented limits, tests/support/block_kit.py)."""

from __future__ import annotations

import json
from urllib.parse import unquote

import pytest

from bot.context import build_context
from bot.slack.preview import ALERT_NAMES, SCREENS, SURFACES, preview
from ledger.accounts import AccountSettings, create_account
from ledger.db import transaction
from ledger.outbox import Alert
from tests.support.block_kit import check_message, check_view
from tests.support.factories import story
from tests.support.slack_harness import *  # noqa: F403
from tests.support.slack_harness import settings_for


def test_every_alert_kind_has_a_preview():
    assert set(ALERT_NAMES) == {a.value.removeprefix("alert.") for a in Alert}
    assert SURFACES == SCREENS + ALERT_NAMES


@pytest.fixture
def previews(sqlite_url, fake_slack):
    ctx = build_context(settings_for(sqlite_url, fake_slack, public_url="https://cb.example.com"))
    ids = story(ctx.sessions)

    def empty(s):
        return create_account(s, AccountSettings(name="Empty", currency="JPY")).id

    empty_id = transaction(ctx.sessions, empty)
    yield ctx, ids["account"], empty_id
    ctx.engine.dispose()


@pytest.mark.parametrize("account", ["story", "empty"])
def test_every_surface_is_block_kit_slack_accepts(previews, account):
    ctx, story_id, empty_id = previews
    surfaces = preview(ctx, story_id if account == "story" else empty_id)
    assert [s.name for s in surfaces] == list(SURFACES)
    for surface in surfaces:
        if surface.kind == "message":
            check_message(surface.payload)
        else:
            assert surface.payload["type"] == surface.kind
            check_view(surface.payload)
        shown = json.loads(unquote(surface.builder_link().split("#", 1)[1]))
        assert shown["blocks"] == surface.payload["blocks"]


def test_previews_use_the_account_own_figures(previews):
    ctx, story_id, _ = previews
    by_name = {s.name: s for s in preview(ctx, story_id)}
    assert "1,000 of 1,000" in by_name["balance"].payload["text"]
    failed = by_name["recharge_failed"].payload
    assert "Fix the payment" in json.dumps(failed)  # the failure has something to fix
    assert by_name["agent_stopped"].payload["text"] == "[Acme] A stopped: plan credits ran out."
    assert by_name["agent-modal"].kind == "modal"


def test_the_command_prints_json_and_a_builder_link(previews, creditbot, sqlite_url):
    creditbot.env(DATABASE_URL=sqlite_url, PUBLIC_URL="https://cb.example.com")
    result = creditbot("slack", "preview", "home", "--account", "Acme")
    home = json.loads(result.stdout)
    assert home["type"] == "home"
    assert result.stderr.startswith("Block Kit Builder: https://app.slack.com/block-kit-builder#")
    everything = json.loads(creditbot("slack", "preview", "all", "--account", "Acme").stdout)
    assert list(everything) == list(SURFACES)
    nope = creditbot("slack", "preview", "nope", "--account", "Acme", code=2)
    assert "choose one of balance, home" in nope.stderr
