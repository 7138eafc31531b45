"""The Bolt app's one error handler: whatever a middleware or listener raises reaches the
person who acted, as the ledger's clear message or as an apology, never as silence."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient

from bot.slack import blocks
from bot.slack.replies import is_view_submission, tell
from ledger.errors import LedgerError

log = logging.getLogger(__name__)
APOLOGY = "Something went wrong on creditbot's side. Please try again in a moment."


def report_error(
    error: Exception,
    body: dict[str, Any],
    client: WebClient,
    respond: Respond | None,
    ack: Ack,
) -> None:
    """`@app.error`: a ledger error is told as it reads (an amount out of bounds, an unknown
    agent); anything else is logged and told as an apology. A modal being submitted is
    answered with it on a field (Slack shows nothing useful for a modal left unanswered)."""
    if isinstance(error, LedgerError):
        text = str(error)
    else:
        log.error("Slack request failed", exc_info=error)
        text = APOLOGY
    if is_view_submission(body):
        if ack.response is None:
            ack(**modal_error_answer(body.get("view") or {}, text, getattr(error, "field", None)))
        return
    try:
        tell(body, client, respond, blocks.error_message(text))
    except Exception:  # noqa: BLE001 - the report itself must not raise
        log.exception("could not tell the user about an error")


def modal_error_answer(view: dict[str, Any], text: str, field: str | None = None) -> dict[str, Any]:
    """The answer to a failed modal submission: `text` on `field` if the modal has it,
    else on its first input; a modal without inputs is replaced by the message."""
    inputs = [b["block_id"] for b in view.get("blocks") or [] if b.get("type") == "input"]
    inputs = [block_id for block_id in inputs if block_id]
    if inputs:
        target = field if field in inputs else inputs[0]
        return {"response_action": "errors", "errors": {target: text[:2000]}}
    return {"response_action": "update", "view": blocks.info_modal("creditbot", text)}
