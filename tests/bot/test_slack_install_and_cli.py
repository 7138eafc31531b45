"""Many workspaces through Slack's OAuth install flow (installations in creditbot's
database, a new account per new workspace), and the CLI: link, billing admins, alert
channel, Socket Mode."""

from __future__ import annotations

import logging
import re

import httpx
import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.context import build_context
from bot.slack.alerts import deliver_due_alerts
from ledger.accounts import account_for_team, get_account, set_alert_channel
from ledger.charges import charge
from ledger.db import transaction
from tests.support.slack_harness import *  # noqa: F403
from tests.support.slack_harness import (
    Server,
    Slack,
    buttons,
    response_posts,
    settings_for,
    texts,
)


@pytest.fixture
def oauth_context(sqlite_url, fake_slack):
    ctx = build_context(
        settings_for(
            sqlite_url,
            fake_slack,
            slack_bot_token="",
            slack_client_id="111.222",
            slack_client_secret="oauth-secret",
        )  # fmt: skip
    )
    yield ctx
    ctx.engine.dispose()


def test_oauth_install_creates_an_account_and_the_workspace_works(oauth_context, fake_slack):
    ctx = oauth_context
    with (
        Server(ctx) as server,
        httpx.Client(base_url=server.url, follow_redirects=False) as browser,
    ):
        page = browser.get("/slack/install")
        assert page.status_code == 200
        link = re.search(r'href="(https://slack.com/oauth/v2/authorize[^"]+)"', page.text).group(1)
        assert (
            "client_id=111.222" in link
            and "scope=commands,chat:write,chat:write.public,users:read" in link
        )
        state = re.search(r"state=([^&\"]+)", link).group(1)

        # the state cookie is Secure (https in production): send it back as a browser would
        cookie = page.headers["set-cookie"].split(";")[0]
        assert cookie == f"slack-app-oauth-state={state}"
        done = browser.get("/slack/oauth_redirect", params={"code": "c0de", "state": state},
                           headers={"Cookie": cookie})  # fmt: skip
        assert done.status_code == 200, done.text
        [exchange] = fake_slack.of("oauth.v2.access")
        assert exchange.args["code"] == "c0de"

        account = transaction(ctx.sessions, lambda s: account_for_team(s, "T0NEW"))
        assert account is not None and account.name == "New Team"
        with ctx.engine.connect() as conn:  # the bot token is stored encrypted (issue 10, 12)
            stored = conn.exec_driver_sql("SELECT bot_token FROM slack_bots").scalars().all()
        assert stored and all(t.startswith("gAAAAA") and "xoxb" not in t for t in stored)

        # the new workspace's /balance runs with its own bot token
        slack = Slack(server.url, fake_slack, ctx)
        _, url = slack.command("/balance", team="T0NEW")
        [reply] = response_posts(fake_slack, url)
        assert "New Team: balance" in texts(reply["blocks"])

        # a replayed state is refused
        again = browser.get("/slack/oauth_redirect", params={"code": "c0de", "state": state},
                            headers={"Cookie": cookie})  # fmt: skip
        assert again.status_code >= 400
        assert len(fake_slack.of("oauth.v2.access")) == 1

    # its alerts go out with its own token
    def spend(s):
        from ledger.agents import add_agent

        agent = add_agent(s, account.id, "bot", behaviour="stop")
        set_alert_channel(s, account.id, "C0NEWALERTS")
        return charge(s, account.id, agent.id, "message", 1, idempotency_key="k")

    transaction(ctx.sessions, spend)  # no plan credits: the agent stops
    assert deliver_due_alerts(ctx) >= 1
    posts = fake_slack.of("chat.postMessage")
    assert {c.token for c in posts} == {"xoxb-new-team"}
    assert any("bot stopped: plan credits ran out" in c.args["text"] for c in posts)


def test_install_routes_explain_when_oauth_is_off(slack):
    response = slack.http.get("/slack/install")
    assert response.status_code == 404
    assert "SLACK_CLIENT_ID" in response.json()["error"]["message"]


# -- CLI ----------------------------------------------------------------------------------


@pytest.fixture
def run_cli(context, monkeypatch):
    from bot.cli import environment

    environment.context.cache_clear()
    monkeypatch.setattr(environment, "context", lambda: context)
    import bot.cli.slack as slack_cli

    monkeypatch.setattr(slack_cli, "context", lambda: context)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args), catch_exceptions=False)


def test_accounts_link_and_unlink(run_cli, context, ids):
    result = run_cli("accounts", "unlink", "--account", "Acme")
    assert result.exit_code == 0 and "has no Slack workspace now" in result.output
    result = run_cli("accounts", "link", "--account", "Acme", "--team", "T0NEWTEAM")
    assert result.exit_code == 0
    assert "Slack team T0NEWTEAM is linked to account" in result.output
    assert transaction(context.sessions, lambda s: get_account(s, "T0NEWTEAM").id) == ids["account"]


def test_accounts_link_refuses_a_team_linked_elsewhere_or_malformed(run_cli, context, ids):
    run_cli("accounts", "create", "--name", "Other")
    result = run_cli("accounts", "link", "--account", "Other", "--team", "T0001")
    assert result.exit_code != 0
    assert (
        f"Slack team T0001 is already linked to account {ids['account']} (Acme); unlink it first."
        in result.output
    )
    result = run_cli("accounts", "link", "--account", "Other", "--team", "not-a-team")
    assert result.exit_code != 0 and "is not a Slack team id" in result.output


def test_billing_admins_and_alert_channel_commands(run_cli, context, ids):
    result = run_cli("accounts", "billing-admins", "--account", "Acme", "U02", "U01", "U02")
    assert result.exit_code == 0 and "billing admins: U01, U02" in result.output
    result = run_cli("accounts", "alert-channel", "--account", "Acme", "C0ALERTS")
    assert result.exit_code == 0
    account = transaction(context.sessions, lambda s: get_account(s, "Acme"))
    assert (account.billing_admins, account.alert_channel_id) == (["U01", "U02"], "C0ALERTS")


def test_slack_socket_needs_an_app_token_and_starts_socket_mode(run_cli, context, monkeypatch):
    result = CliRunner().invoke(cli, ["slack", "socket"])
    assert result.exit_code != 0 and "SLACK_APP_TOKEN is not set" in result.output

    started = []

    class FakeHandler:
        def __init__(self, app, app_token):
            started.append((app, app_token))

        def start(self):
            started.append("started")

    import bot.slack.answering as answering

    monkeypatch.setattr(answering, "AnsweringSocketModeHandler", FakeHandler)
    context.settings.slack_app_token = "xapp-1-test"
    result = run_cli("slack", "socket")
    assert result.exit_code == 0, result.output
    (app, token), state = started
    assert token == "xapp-1-test" and state == "started"
    assert app.client.base_url == context.settings.slack_api_url


def test_slack_deliver_alerts_command(run_cli, context, ids, fake_slack):
    transaction(context.sessions, lambda s: set_alert_channel(s, ids["account"], "C0ALERTS"))
    transaction(
        context.sessions,
        lambda s: charge(s, ids["account"], ids["a"], "message", 1000, idempotency_key="k"),
    )
    result = run_cli("slack", "deliver-alerts")
    assert result.exit_code == 0 and "3 alert(s) delivered" in result.output


def test_socket_mode_acknowledges_before_asking_slack_anything(context, fake_slack, ids):
    """In Socket Mode too, the envelope is acknowledged first: the admin check (users.info)
    and the answer on the response_url come after it."""
    from slack_sdk.socket_mode.request import SocketModeRequest

    from bot.slack.answering import AnsweringSocketModeHandler
    from bot.slack.app import create_slack_app

    context.settings.slack_app_token = "xapp-1-test"
    handler = AnsweringSocketModeHandler(create_slack_app(context, socket_mode=True), "xapp-1-test")
    acks = []

    class Socket:  # what creditbot sends back on the WebSocket
        logger = logging.getLogger("test.socket")

        def send_socket_mode_response(self, response):
            asked = [c.method for c in fake_slack.calls if c.method != "auth.test"]  # Bolt's
            acks.append((response.envelope_id, asked))

    response_url = fake_slack.response_url("socket")
    command = {"team_id": "T0001", "user_id": "UOWNER", "command": "/topup", "text": "50",
               "channel_id": "C0GENERAL", "response_url": response_url, "trigger_id": "t.1"}  # fmt: skip
    try:
        handler.handle(Socket(), SocketModeRequest("slash_commands", "env1", command))
    finally:
        handler.client.close()
    assert acks == [("env1", [])]  # nothing asked of Slack yet when the envelope was acked
    [reply] = response_posts(fake_slack, response_url)
    assert "Pay $50.00" in buttons(reply["blocks"])
    assert [c.args["user"] for c in fake_slack.of("users.info")] == ["UOWNER"]
