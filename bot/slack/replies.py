"""Telling the person who acted something privately, wherever they acted from."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.respond import Respond
from slack_sdk import WebClient

from bot.slack import blocks


def acting_user(body: dict[str, Any]) -> str:
    """Who pressed, typed or submitted."""
    return (body.get("user") or {}).get("id") or body.get("user_id") or ""


def is_view_submission(body: dict[str, Any]) -> bool:
    """A modal being submitted: it is answered through `ack`, nowhere else."""
    return body.get("type") == "view_submission"


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
    in_view = container.get("type") == "view" or is_view_submission(body)
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
    user = acting_user(body)
    channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
    if user and channel:
        client.chat_postEphemeral(
            channel=channel, user=user, text=message["text"], blocks=message.get("blocks")
        )
