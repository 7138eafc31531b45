"""The App Home tab (published on open, refreshed when balances change, at most every few
seconds; the alert channel picker) and request verification (unsigned and stale requests
are rejected and change nothing)."""

from __future__ import annotations

import time
from datetime import timedelta

from bot.slack.home import refresh_home_tabs
from ledger.charges import charge
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.models import Account
from tests.support.factories import card_saved
from tests.support.slack_harness import *  # noqa: F403
from tests.support.slack_harness import MEMBER, SECRET, open_home_tab, signature, texts


def test_home_tab_shows_the_dashboard_and_alert_picker(slack, fake_slack):
    published = open_home_tab(slack, fake_slack)
    assert published.args["user_id"] == "UADMIN"
    view = published.args["view"]
    assert view["type"] == "home"
    seen = texts(view["blocks"])
    assert "*Wallet*\n500 credits ($5.00)" in seen and "1,000 of 1,000 left" in seen
    assert "*Alerts* go to no channel yet" in seen
    picker = next(b for b in view["blocks"] if b.get("block_id") == "alert_channel")["accessory"]
    assert picker["type"] == "conversations_select" and "initial_conversation" not in picker


def test_home_tab_defaults_to_the_configured_alert_channel(fake_slack, context, ids):
    from bot.context import build_context
    from tests.support.slack_harness import Server, Slack, settings_for

    ctx = build_context(
        settings_for(str(context.engine.url), fake_slack, slack_alert_channel="C0DEFAULT")
    )
    with Server(ctx) as server:
        published = open_home_tab(Slack(server.url, fake_slack, ctx), fake_slack)
    picker = next(
        b for b in published.args["view"]["blocks"] if b.get("block_id") == "alert_channel"
    )["accessory"]
    assert picker["initial_conversation"] == "C0DEFAULT"
    ctx.engine.dispose()


def test_home_tab_is_refreshed_when_balances_change_at_most_every_few_seconds(
    slack, fake_slack, context, ids
):
    open_home_tab(slack, fake_slack)
    assert len(fake_slack.of("views.publish")) == 1
    now = utcnow()
    # nothing changed: nothing to publish, however long it has been
    assert refresh_home_tabs(context, now=now + timedelta(minutes=1)) == 0
    # a charge changes the plan balance: refreshed, once
    transaction(
        context.sessions,
        lambda s: charge(s, ids["account"], ids["a"], "message", 250, idempotency_key="k1"),
    )
    assert refresh_home_tabs(context, now=now + timedelta(minutes=1)) == 1
    latest = fake_slack.of("views.publish")[-1].args
    assert latest["user_id"] == "UADMIN" and "750 of 1,000 left" in texts(latest["view"]["blocks"])
    # another change two seconds later waits for the interval
    transaction(
        context.sessions,
        lambda s: charge(s, ids["account"], ids["a"], "message", 50, idempotency_key="k2"),
    )
    assert refresh_home_tabs(context, now=now + timedelta(minutes=1, seconds=2)) == 0
    assert refresh_home_tabs(context, now=now + timedelta(minutes=1, seconds=5)) == 1
    assert "700 of 1,000 left" in texts(fake_slack.of("views.publish")[-1].args["view"]["blocks"])
    assert len(fake_slack.of("views.publish")) == 3


def test_alert_channel_picker_is_for_billing_admins(slack, fake_slack, context, ids):
    open_home_tab(slack, fake_slack, user=MEMBER)
    slack.click("home_alert_channel", user=MEMBER, view={"type": "home", "id": "VHOME"}, block_id="alert_channel",
                extra={"type": "conversations_select", "selected_conversation": "C0NEW"})  # fmt: skip
    [refusal] = fake_slack.wait_for("views.open")
    assert "Only billing admins can choose the alert channel" in texts(
        refusal.args["view"]["blocks"]
    )
    fake_slack.wait_for("views.publish", 2)  # the tab is put back as it was
    assert (
        transaction(context.sessions, lambda s: s.get(Account, ids["account"]).alert_channel_id)
        is None
    )


def test_alert_channel_the_bot_cannot_post_in_is_explained(slack, fake_slack, context, ids):
    fake_slack.closed_channels.add("C0PRIVATE")
    slack.click("home_alert_channel", view={"type": "home", "id": "VHOME"}, block_id="alert_channel",
                extra={"type": "conversations_select", "selected_conversation": "C0PRIVATE"})  # fmt: skip
    [published] = fake_slack.wait_for("views.publish")
    notice = texts(published.args["view"]["blocks"][:1])
    assert "Alerts now go to <#C0PRIVATE>, but I cannot post there (not_in_channel)" in notice
    assert "/invite @creditbot" in notice
    assert (
        transaction(context.sessions, lambda s: s.get(Account, ids["account"]).alert_channel_id)
        == "C0PRIVATE"
    )


# -- request verification -----------------------------------------------------------------


def _topup_form(response_url):
    from urllib.parse import urlencode

    return urlencode({"team_id": "T0001", "user_id": "UADMIN", "command": "/topup", "text": "50",
                      "response_url": response_url, "trigger_id": "t.1", "channel_id": "C1"})  # fmt: skip


def _wallet_and_calls(context, ids, fake_slack):
    wallet = transaction(context.sessions, lambda s: s.get(Account, ids["account"]).wallet_balance)
    return wallet, len(fake_slack.calls)


def test_unsigned_request_is_rejected_and_changes_nothing(slack, fake_slack, context, ids):
    before = _wallet_and_calls(context, ids, fake_slack)
    response = slack.post(
        _topup_form(fake_slack.response_url("x")), "application/x-www-form-urlencoded", signed=False
    )
    assert response.status_code == 401
    time.sleep(0.3)
    assert _wallet_and_calls(context, ids, fake_slack) == before


def test_wrongly_signed_request_is_rejected(slack, fake_slack, context, ids):
    before = _wallet_and_calls(context, ids, fake_slack)
    response = slack.post(
        _topup_form(fake_slack.response_url("x")),
        "application/x-www-form-urlencoded",
        secret="not-the-secret",
    )
    assert response.status_code == 401
    # a signature over another body does not carry over
    ts = int(time.time())
    response = slack.http.post("/slack/events", content=_topup_form("http://127.0.0.1:1/r").encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature(SECRET, ts, "text=1")})  # fmt: skip
    assert response.status_code == 401
    time.sleep(0.3)
    assert _wallet_and_calls(context, ids, fake_slack) == before


def test_stale_request_is_rejected_and_changes_nothing(slack, fake_slack, context, ids):
    card_saved(context.sessions, ids["account"])  # turning auto-recharge on needs one
    before = transaction(
        context.sessions, lambda s: s.get(Account, ids["account"]).auto_recharge_enabled
    )
    view = {"type": "modal", "callback_id": "auto_recharge_modal", "blocks": [], "id": "V1"}
    payload_state = {"enabled": {"enabled_input": {"type": "radio_buttons", "selected_option": {"value": "on"}}},
                     "threshold": {"threshold_input": {"type": "plain_text_input", "value": "10"}},
                     "amount": {"amount_input": {"type": "plain_text_input", "value": "50"}}}  # fmt: skip
    payload = {"type": "view_submission", "team": {"id": "T0001"}, "user": {"id": "UADMIN"}, "api_app_id": "A0001",
               "view": {**view, "state": {"values": payload_state}}}  # fmt: skip
    stale = int(time.time()) - 6 * 60  # Slack's window is 5 minutes
    response = slack.interaction(payload, timestamp=stale)
    assert response.status_code == 401
    assert (
        transaction(
            context.sessions, lambda s: s.get(Account, ids["account"]).auto_recharge_enabled
        )
        == before
    )
    # the same submission, fresh, is accepted (so the refusal above was the timestamp's)
    response = slack.interaction(payload)
    assert response.status_code == 200 and response.json()["response_action"] == "update"
    assert (
        transaction(
            context.sessions, lambda s: s.get(Account, ids["account"]).auto_recharge_enabled
        )
        is True
    )


def test_url_verification_challenge(slack):
    import json

    response = slack.post(
        json.dumps({"type": "url_verification", "challenge": "abc123", "token": "t"}),
        "application/json",
    )
    assert response.status_code == 200 and response.json() == {"challenge": "abc123"}


def test_slack_routes_without_configuration_say_what_is_missing(sqlite_url, fake_slack):
    import httpx

    from bot.context import build_context
    from tests.support.slack_harness import Server, settings_for

    ctx = build_context(settings_for(sqlite_url, fake_slack, slack_signing_secret=""))
    with Server(ctx) as server, httpx.Client(base_url=server.url) as client:
        response = client.post("/slack/events", content=b"{}")
        assert response.status_code == 503
        assert "SLACK_SIGNING_SECRET is not set" in response.json()["error"]["message"]
        assert client.get("/slack/install").status_code == 503


def test_home_tab_of_a_workspace_without_an_account(slack, fake_slack):
    slack.event(
        {"type": "app_home_opened", "user": "UADMIN", "channel": "D0001", "tab": "home"},
        team="T0OTHER",
    )
    [published] = fake_slack.wait_for("views.publish")
    assert "not linked to a creditbot account" in texts(published.args["view"]["blocks"])


def test_when_slack_cannot_say_who_is_an_admin_nobody_is_wrongly_refused(slack, fake_slack):
    from tests.support.slack_harness import response_posts

    fake_slack.fail_with(500, times=2, methods={"users.info"})
    _, url = slack.command("/topup", "50", user="UOWNER")
    [reply] = response_posts(fake_slack, url)
    assert (
        "Something went wrong on creditbot's side. Please try again in a moment." in reply["text"]
    )
    assert "Only billing admins" not in reply["text"]
