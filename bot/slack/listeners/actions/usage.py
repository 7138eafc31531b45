"""The usage section's actions: a month's statement (a signed CSV link, for anyone who may
see the balance) and the billing page (a single-use sign-in link for the person who
pressed, who may change settings there if they are a billing admin)."""

from __future__ import annotations

from typing import Any

from slack_bolt import BoltContext, Respond
from slack_sdk import WebClient

from bot.http.usage_routes import MONTH
from bot.slack import blocks
from bot.slack.blocks.usage import billing_link_message, statement_link_message
from bot.slack.bolt_context import account_of, app_context, in_transaction
from bot.slack.permissions import is_billing_admin
from bot.slack.replies import acting_user, tell
from bot.usage_links import sign_in_url, statement_url
from ledger.web_access import LINK_TTL, issue_sign_in_link


def statement_month_chosen(
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    respond: Respond,
) -> None:
    month = (action.get("selected_option") or {}).get("value") or ""
    if not MONTH.match(month):
        tell(body, client, respond, blocks.error_message("Choose a month for the statement."))
        return
    url = statement_url(app_context(context), account_of(context).id, month)
    tell(body, client, respond, statement_link_message(month, url), title="Statement")


def open_billing_page(
    body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    account = account_of(context)
    user = acting_user(body)
    can_edit = is_billing_admin(client, account.billing_admins, user)
    token = in_transaction(
        context, lambda s: issue_sign_in_link(s, account.id, user, can_edit=can_edit)
    )
    url = sign_in_url(app_context(context), account.id, token)
    minutes = int(LINK_TTL.total_seconds() // 60)
    tell(body, client, respond, billing_link_message(url, can_edit, minutes), title="Billing page")
