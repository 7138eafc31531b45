"""Listener middleware: acknowledge first, the workspace's linked account, billing admins
only (rule 11). Each listener names what it needs when it is registered:

    app.command("/topup", middleware=billing_admins_only("top up the wallet"))(topup_command)

A refusal is told privately where the person acted (an ephemeral reply, or a small modal
from the Home tab or over a modal); a modal being submitted is refused in its own answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, BoltContext, BoltResponse
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot.slack import blocks
from bot.slack.bolt_context import ACCOUNT, AccountRef, account_of, in_transaction
from bot.slack.permissions import is_billing_admin
from bot.slack.replies import acting_user, is_view_submission, tell
from ledger.accounts import account_for_team

Middleware = Callable[..., BoltResponse | None]
#: What a refusal does besides saying no (a refused Home tab pick puts the tab back).
AfterRefusal = Callable[[BoltContext, WebClient, dict[str, Any]], None]


def acknowledge(ack: Ack, next: Callable[[], None]) -> None:
    """Acknowledge at once: Slack gets its answer now (bot/slack/answering.py) while the
    checks and the listener go on."""
    ack()
    next()


def _stop(ack: Ack) -> BoltResponse:
    """End the request here, answered (so Bolt looks for no other listener)."""
    return ack.response or ack()


def _attach_account(context: BoltContext) -> bool:
    """Put the workspace's account into `context["account"]`; False when it has none."""
    team_id = context.team_id
    if not team_id:
        return False

    def read(session: Session) -> AccountRef | None:
        account = account_for_team(session, team_id)
        if account is None:
            return None
        return AccountRef(
            account.id,
            account.name,
            account.currency,
            account.credits_per_unit,
            list(account.billing_admins or []),
        )

    account = in_transaction(context, read)
    if account is not None:
        context[ACCOUNT] = account
    return account is not None


def linked_account(
    ack: Ack,
    body: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    respond: Respond | None,
    next: Callable[[], None],
) -> BoltResponse | None:
    """The workspace's account into `context["account"]`; a workspace without one is told
    how an operator links it."""
    if _attach_account(context):
        return next()
    tell(body, client, respond, blocks.not_linked_message(context.team_id))
    return _stop(ack)


def linked_account_in_modal(field: str) -> Middleware:
    """`linked_account` for a modal being submitted: no account is an error on `field`."""

    def linked_account_of_modal(
        ack: Ack, context: BoltContext, next: Callable[[], None]
    ) -> BoltResponse | None:
        if _attach_account(context):
            return next()
        text = blocks.not_linked_message(context.team_id)["text"]
        return ack(response_action="errors", errors={field: text})

    return linked_account_of_modal


def linked_account_for_options(
    ack: Ack, context: BoltContext, next: Callable[[], None]
) -> BoltResponse | None:
    """`linked_account` for a select asking for options: no account, no options."""
    if _attach_account(context):
        return next()
    return ack(options=[])


def billing_admin(what: str, *, after_refusal: AfterRefusal | None = None) -> Middleware:
    """Only billing admins may go on to do `what`; anyone else is told who can. A modal
    being submitted is replaced by the refusal."""

    def billing_admins_only(
        ack: Ack,
        body: dict[str, Any],
        client: WebClient,
        context: BoltContext,
        respond: Respond | None,
        next: Callable[[], None],
    ) -> BoltResponse | None:
        account = account_of(context)
        if is_billing_admin(client, account.billing_admins, acting_user(body)):
            return next()
        refusal = blocks.refusal_text(what, account.billing_admins)
        if is_view_submission(body):
            return ack(response_action="update", view=blocks.info_modal("Not allowed", refusal))
        tell(body, client, respond, blocks.info_message(refusal), title="Not allowed")
        if after_refusal is not None:
            after_refusal(context, client, body)
        return _stop(ack)

    return billing_admins_only


def in_a_linked_workspace() -> list[Middleware]:
    """For anyone in a workspace linked to an account."""
    return [acknowledge, linked_account]


def billing_admins_only(
    what: str, *, after_refusal: AfterRefusal | None = None
) -> list[Middleware]:
    """For the billing admins of a linked workspace (a button or command)."""
    return [acknowledge, linked_account, billing_admin(what, after_refusal=after_refusal)]


def billing_admins_only_in_modal(field: str, what: str) -> list[Middleware]:
    """For the billing admins of a linked workspace submitting a modal (acknowledged by the
    listener, with the modal's answer)."""
    return [linked_account_in_modal(field), billing_admin(what)]
