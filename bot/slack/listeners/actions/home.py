"""The alert channel picker on the App Home tab."""

from __future__ import annotations

from typing import Any

from slack_bolt import BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot.slack import blocks
from bot.slack.bolt_context import account_of, app_context, in_transaction
from bot.slack.home import publish_home
from bot.slack.replies import acting_user
from ledger.accounts import set_alert_channel
from ledger.audit import Actor
from ledger.slack_workspaces import release_alerts


def put_back_home_tab(context: BoltContext, client: WebClient, body: dict[str, Any]) -> None:
    """After a refused pick: the picker shows the channel that is really set."""
    publish_home(app_context(context), client, context.team_id, acting_user(body))


def alert_channel_picked(
    body: dict[str, Any], action: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """Alerts go to the picked channel from now on, waiting ones included; the bot says so
    there, or explains on the tab why it cannot post there."""
    account = account_of(context)
    who = acting_user(body)
    channel = action.get("selected_conversation")

    def save(session: Session) -> None:
        set_alert_channel(session, account.id, channel, actor=Actor.slack(who))
        release_alerts(session, account.id)

    in_transaction(context, save)
    notice = blocks.alert_channel_notice(channel)
    try:
        client.chat_postMessage(channel=channel, **blocks.alert_channel_hello(account.name, who))
    except SlackApiError as exc:
        notice = blocks.alert_channel_notice(channel, exc.response.get("error") or "unknown error")
    publish_home(app_context(context), client, context.team_id, who, notice=notice)
