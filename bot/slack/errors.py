"""The Bolt app's one error handler: whatever a middleware or listener raises reaches the
person who acted, as the ledger's clear message or as an apology, never as silence."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.context.respond import Respond
from slack_sdk import WebClient

from bot.slack import blocks
from bot.slack.replies import is_view_submission, tell
from ledger.errors import LedgerError

log = logging.getLogger(__name__)
APOLOGY = "Something went wrong on creditbot's side. Please try again in a moment."


def report_error(
    error: Exception, body: dict[str, Any], client: WebClient, respond: Respond | None
) -> None:
    """`@app.error`: a ledger error is told as it reads (an amount out of bounds, an unknown
    agent); anything else is logged and told as an apology. A modal being submitted shows
    Slack's own error instead."""
    if isinstance(error, LedgerError):
        text = str(error)
    else:
        log.error("Slack request failed", exc_info=error)
        text = APOLOGY
    if is_view_submission(body):
        return
    try:
        tell(body, client, respond, blocks.error_message(text))
    except Exception:  # noqa: BLE001 - the report itself must not raise
        log.exception("could not tell the user about an error")
