"""Fix the payment, on a failed or paused auto-recharge alert: a billing admin gets a fresh
Stripe page of their own, shown only to them (anyone else is told who can, by the
middleware). It fixes the account's last attempt; when that did not fail, there is
nothing to fix and nothing is opened. Manage card (/balance, Home tab) opens Stripe's
Customer Portal the same way."""

from __future__ import annotations

from typing import Any

from slack_bolt import BoltContext, Respond
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot import stripe as stripe_gateway
from bot.slack import blocks
from bot.slack.bolt_context import account_of, app_context, in_transaction
from bot.slack.dashboard_data import RechargeAttempt, last_recharge
from bot.slack.replies import acting_user, tell
from ledger.accounts import get_account


def fix_payment(
    body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    account = account_of(context)

    def read(session: Session) -> tuple[RechargeAttempt | None, str]:
        return last_recharge(session, account.id), get_account(session, account.id).timezone

    attempt, timezone = in_transaction(context, read)
    if attempt is None or attempt.status != "failed":
        message = blocks.nothing_to_fix_message(attempt, timezone)
    else:
        try:
            mode, url = stripe_gateway.create_fix_checkout(
                app_context(context),
                account.id,
                attempt.reason,
                attempt.amount_minor or 0,
                acting_user(body),
            )
        except Exception as exc:  # noqa: BLE001 - any Stripe failure is told, not swallowed
            reason = blocks.failure_reason(exc)
            message = blocks.error_message(f"Could not open the Stripe page: {reason}")
        else:
            message = blocks.fix_page_message(mode, url, attempt.reason)
    tell(body, client, respond, message, title="Fix the payment")


def manage_card(
    body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    account = account_of(context)
    try:
        url = stripe_gateway.create_portal_session(app_context(context), account.id)
    except Exception as exc:  # noqa: BLE001 - any Stripe failure is told, not swallowed
        message = blocks.error_message(
            f"Could not open the Stripe page: {blocks.failure_reason(exc)}"
        )
    else:
        message = blocks.portal_page_message(url)
    tell(body, client, respond, message, title="Manage card")
