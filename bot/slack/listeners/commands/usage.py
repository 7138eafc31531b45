"""/usage: the last 30 days as a chart, the top agents against their limits, the forecast,
privately, for anyone in the workspace."""

from __future__ import annotations

from slack_bolt import BoltContext, Respond

from bot.slack.blocks.usage import usage_message
from bot.slack.bolt_context import account_of, app_context
from bot.usage_links import chart_url
from bot.usage_summary import load_usage_summary


def usage_command(context: BoltContext, respond: Respond) -> None:
    app = app_context(context)
    account_id = account_of(context).id
    summary = load_usage_summary(app, account_id)
    respond(
        response_type="ephemeral",
        **usage_message(summary, chart_url(app, account_id, summary.end)),
    )
