"""The alert channel picker on the App Home tab."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot.slack.deps import app_context, guarded, require_account, require_admin, run, user_id
from bot.slack.home import publish_home
from ledger.accounts import set_alert_channel
from ledger.slack_workspaces import release_alerts


@guarded
def alert_channel_picked(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    ack()
    account = require_account(context, body, client, None)
    if account is None:
        return
    who = user_id(body)
    if not require_admin(account, body, client, None, "choose the alert channel"):
        publish_home(app_context(context), client, context.team_id, who)  # undo the pick
        return
    channel = action.get("selected_conversation")

    def save(session: Session) -> None:
        set_alert_channel(session, account.id, channel)
        release_alerts(session, account.id)

    run(context, save)
    notice = f":white_check_mark: Alerts now go to <#{channel}>."
    try:
        client.chat_postMessage(
            channel=channel,
            text=f"creditbot will post {account.name}'s balance alerts in this channel (set by <@{who}>).",
        )
    except SlackApiError as exc:
        error = exc.response.get("error")
        notice = (
            f":warning: Alerts now go to <#{channel}>, but I cannot post there ({error})."
            " Invite me with `/invite @creditbot` in that channel."
        )
    publish_home(app_context(context), client, context.team_id, who, notice=notice)
