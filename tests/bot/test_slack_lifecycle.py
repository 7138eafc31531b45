"""A workspace that uninstalls creditbot or revokes its token: creditbot stops posting
there, keeps the alerts, and says so in `alerts list` and `doctor`; once it is installed
again (a new bot token, or a new OAuth install) the kept alerts go out."""

from __future__ import annotations

from datetime import datetime

import pytest
from slack_bolt import BoltContext
from slack_sdk.oauth.installation_store.models.installation import Installation

from bot.context import build_context
from bot.slack.alerts import deliver_due_alerts
from bot.slack.bolt_context import app_context_middleware
from bot.slack.installations import installation_store
from bot.slack.listeners.events.uninstall import tokens_revoked
from ledger.accounts import set_alert_channel
from ledger.charges import charge
from ledger.db import transaction
from ledger.slack_workspaces import uninstalls
from tests.support.slack_harness import *  # noqa: F403
from tests.support.slack_harness import TEAM, Server, Slack, settings_for
from tests.support.waiting import wait_until

CHANNEL = "C0ALERTS"


def _alerts_waiting(context, ids):
    """Plan used up by agent A: three alerts in the outbox for #alerts."""
    transaction(context.sessions, lambda s: set_alert_channel(s, ids["account"], CHANNEL))
    transaction(
        context.sessions,
        lambda s: charge(s, ids["account"], ids["a"], "message", 1000, idempotency_key="k"),
    )


def _gone(context):
    return transaction(context.sessions, lambda s: [(u.team_id, u.event) for u in uninstalls(s)])


def _recorded(context, expected):
    """Slack is answered before the listener runs: wait for it to have recorded."""
    return wait_until(lambda: _gone(context) == expected)


def test_uninstalled_workspace_gets_no_posts_and_its_alerts_wait_for_a_new_token(
    slack, fake_slack, context, ids, creditbot, sqlite_url
):
    _alerts_waiting(context, ids)
    assert slack.event({"type": "app_uninstalled"}).status_code == 200
    fake_slack.revoked_tokens.add("xoxb-test")
    assert _recorded(context, [(TEAM, "app_uninstalled")])

    assert deliver_due_alerts(context) == 0
    assert fake_slack.of("chat.postMessage", ok_only=False) == []  # not even tried

    creditbot.env(DATABASE_URL=sqlite_url, SLACK_BOT_TOKEN="xoxb-test",
                  SLACK_API_URL=fake_slack.api_url)  # fmt: skip
    listed = creditbot.json("alerts", "list", "--status", "pending", "--status", "failed")
    assert [(a["kind"], a["state"]) for a in listed] == [
        ("alert.agent_stopped", "pending"),  # held behind the first, to keep the order
        ("alert.plan_exhausted", "pending"),
        ("alert.plan_low", "failed"),
    ]
    assert "Slack workspace T0001 uninstalled the app on" in listed[-1]["last_error"]
    found = {f["part"]: f for f in creditbot.json("doctor", code=1)["findings"]}
    assert found["slack installs"]["status"] == "fail"
    assert (
        "workspace T0001 (account Acme) uninstalled the app" in found["slack installs"]["message"]
    )
    assert "3 alert(s) held" in found["slack installs"]["message"]
    assert found["slack"]["message"] == "Slack refused the bot token: token_revoked"

    # Reinstalled: Slack gave a new token. The kept alerts go out, in order, once each.
    creditbot.env(SLACK_BOT_TOKEN="xoxb-fresh")
    retried = creditbot("alerts", "retry")
    assert "3 of 3 alert(s) delivered" in retried.output
    posts = fake_slack.of("chat.postMessage")
    assert [p.token for p in posts] == ["xoxb-fresh"] * 3
    assert posts[0].args["text"].startswith("[Acme] Plan credits are running low")
    assert creditbot.json("alerts", "list", "--status", "failed") == []
    doctor = {f["part"]: f for f in creditbot.json("doctor", code=1)["findings"]}
    assert doctor["slack installs"]["status"] == "ok"


def test_tokens_revoked_counts_only_for_the_bot_token(slack, context):
    users_only = {"type": "tokens_revoked", "tokens": {"oauth": ["U123"], "bot": []}}
    bolt = BoltContext({"team_id": TEAM})
    app_context_middleware(context)(bolt, lambda: None)
    tokens_revoked(users_only, bolt)  # what the listener does, here and now
    assert _gone(context) == []  # creditbot posts as the bot: a user's token takes nothing
    bot = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["UBOT"]}}
    assert slack.event(bot).status_code == 200
    assert _recorded(context, [(TEAM, "tokens_revoked")])


@pytest.fixture
def oauth(sqlite_url, fake_slack, ids):
    ctx = build_context(settings_for(sqlite_url, fake_slack, slack_bot_token="",
                                     slack_client_id="111.222", slack_client_secret="s"))  # fmt: skip
    with Server(ctx) as server:
        yield ctx, Slack(server.url, fake_slack, ctx)
    ctx.engine.dispose()


def _install(ctx, token: str) -> None:
    installation_store(ctx).save(
        Installation(app_id="A0001", team_id=TEAM, team_name="Acme", user_id="UINSTALLER",
                     bot_token=token, bot_id="BBOT", bot_user_id="UBOT",
                     bot_scopes="commands,chat:write", installed_at=datetime.now().timestamp())
    )  # fmt: skip


def test_oauth_uninstall_deletes_the_install_and_a_new_install_posts_again(oauth, fake_slack, ids):
    ctx, slack = oauth
    _install(ctx, "xoxb-acme")
    _alerts_waiting(ctx, ids)
    store = installation_store(ctx)
    assert store.find_bot(enterprise_id=None, team_id=TEAM) is not None

    assert slack.event({"type": "app_uninstalled"}).status_code == 200
    assert _recorded(ctx, [(TEAM, "app_uninstalled")])
    assert store.find_bot(enterprise_id=None, team_id=TEAM) is None
    assert deliver_due_alerts(ctx) == 0
    assert fake_slack.of("chat.postMessage", ok_only=False) == []

    _install(ctx, "xoxb-acme-again")
    assert _gone(ctx) == []
    from ledger.outbox_status import retry_alerts

    transaction(ctx.sessions, lambda s: retry_alerts(s, account_id=ids["account"]))
    assert deliver_due_alerts(ctx) == 3
    assert {p.token for p in fake_slack.of("chat.postMessage")} == {"xoxb-acme-again"}
