"""What listeners share: the creditbot context in Bolt's context, the account of the
workspace, and telling the person who acted something privately."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import BoltContext
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot.context import AppContext
from bot.slack import blocks
from bot.slack.permissions import is_billing_admin
from ledger.accounts import account_for_team
from ledger.db import transaction
from ledger.errors import LedgerError

log = logging.getLogger(__name__)
KEY = "creditbot"


def app_context(context: BoltContext) -> AppContext:
    return context[KEY]


def run(context: BoltContext, work: Callable[[Session], Any]) -> Any:
    """One committed ledger transaction."""
    return transaction(app_context(context).sessions, work)


@dataclass(frozen=True)
class AccountRef:
    id: int
    name: str
    currency: str
    credits_per_unit: int
    billing_admins: list[str]


def linked_account(context: BoltContext) -> AccountRef | None:
    team_id = context.team_id
    if not team_id:
        return None

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

    return run(context, read)


def tell(
    body: dict[str, Any],
    client: WebClient,
    respond: Respond | None,
    message: dict[str, Any],
    *,
    title: str = "creditbot",
    replace: bool = False,
) -> None:
    """Show `message` to the person who acted, privately, wherever they acted from: an
    ephemeral reply in a channel or DM (response_url), a pushed modal over a modal, or a
    small modal from the Home tab."""
    container = body.get("container") or {}
    in_view = container.get("type") == "view" or body.get("type") == "view_submission"
    if respond is not None and body.get("response_url") and not in_view:
        respond(
            text=message["text"],
            blocks=message.get("blocks"),
            response_type="ephemeral",
            replace_original=replace,
        )
        return
    trigger = body.get("trigger_id")
    view = body.get("view") or {}
    if trigger:
        modal = blocks.info_modal(title, message["text"])
        modal["blocks"] = message.get("blocks") or modal["blocks"]
        if view.get("type") == "modal":
            client.views_push(trigger_id=trigger, view=modal)
        else:
            client.views_open(trigger_id=trigger, view=modal)
        return
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
    if user and channel:
        client.chat_postEphemeral(
            channel=channel, user=user, text=message["text"], blocks=message.get("blocks")
        )


def user_id(body: dict[str, Any]) -> str:
    return (body.get("user") or {}).get("id") or body.get("user_id") or ""


def require_admin(
    account: AccountRef,
    body: dict[str, Any],
    client: WebClient,
    respond: Respond | None,
    what: str,
) -> bool:
    """True when the person may do `what`; otherwise they are told privately who can."""
    if is_billing_admin(client, account.billing_admins, user_id(body)):
        return True
    tell(
        body,
        client,
        respond,
        blocks.info_message(blocks.refusal_text(what, account.billing_admins)),
        title="Not allowed",
    )
    return False


def require_account(
    context: BoltContext, body: dict[str, Any], client: WebClient, respond: Respond | None
) -> AccountRef | None:
    account = linked_account(context)
    if account is None:
        tell(body, client, respond, blocks.not_linked_message(context.team_id))
    return account


def guarded(listener: Callable[..., Any]) -> Callable[..., Any]:
    """Run a listener so that a ledger error reaches the person as its clear message, and
    anything unexpected as an apology, instead of silence. Keeps the listener's argument
    names (Bolt injects arguments by name through `inspect.unwrap`)."""

    @functools.wraps(listener)
    def wrapper(**kwargs: Any) -> Any:
        try:
            return listener(**kwargs)
        except LedgerError as exc:
            _report(kwargs, str(exc))
        except Exception:
            log.exception("Slack listener %s failed", listener.__name__)
            _report(
                kwargs, "Something went wrong on creditbot's side. Please try again in a moment."
            )
        return None

    return wrapper


def _report(kwargs: dict[str, Any], text: str) -> None:
    body, client = kwargs.get("body") or {}, kwargs.get("client")
    if client is None or body.get("type") == "view_submission":
        return
    try:
        tell(body, client, kwargs.get("respond"), blocks.error_message(text))
    except Exception:  # noqa: BLE001 - the report itself must not raise
        log.exception("could not tell the user about an error")
