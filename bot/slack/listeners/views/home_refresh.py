"""After a settings modal is saved, the account's open Home tabs show the change at once.

A Bolt lazy listener: it starts once the modal's listener has saved and answered Slack,
so the person is not kept waiting while the tabs are published."""

from __future__ import annotations

from datetime import timedelta

from slack_bolt import BoltContext

from bot.slack.bolt_context import account_of, app_context
from bot.slack.home import refresh_home_tabs


def refresh_account_home_tabs(context: BoltContext) -> None:
    # No minimum interval: the person who saved may be looking at the tab right now.
    refresh_home_tabs(
        app_context(context), account_id=account_of(context).id, min_interval=timedelta(0)
    )
