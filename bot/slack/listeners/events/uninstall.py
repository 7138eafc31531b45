"""A workspace took creditbot's access away: `app_uninstalled`, or `tokens_revoked` with
the bot's token. Its OAuth installs are deleted (Bolt's own revocation handling), the
uninstall is recorded so nothing is posted there any more, and its alerts stay in the
outbox, reported by `creditbot doctor` and `creditbot alerts list`, until it installs
creditbot again."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import BoltContext
from slack_bolt.listener.builtins import TokenRevocationListeners

from bot.slack.bolt_context import app_context, in_transaction
from bot.slack.clients import oauth_mode, token_digest
from bot.slack.installations import installation_store
from ledger.slack_workspaces import record_uninstall

log = logging.getLogger(__name__)


def _revocations(context: BoltContext) -> TokenRevocationListeners | None:
    """Bolt's handlers that delete a workspace's installs (OAuth installs only)."""
    ctx = app_context(context)
    if not oauth_mode(ctx.settings):
        return None
    return TokenRevocationListeners(installation_store(ctx))


def _record(context: BoltContext, event: str) -> None:
    settings = app_context(context).settings
    team_id = context.team_id
    if not team_id:
        return
    # With one bot token, remember which token died: another token in SLACK_BOT_TOKEN
    # (a reinstall) lifts the silence without anyone touching the database.
    digest = None if oauth_mode(settings) else token_digest(settings.slack_bot_token)
    in_transaction(context, lambda s: record_uninstall(s, team_id, event, token_digest=digest))
    log.warning("Slack workspace %s: %s; alerts for it are kept, not posted", team_id, event)


def app_uninstalled(context: BoltContext) -> None:
    revocations = _revocations(context)
    if revocations is not None:
        revocations.handle_app_uninstalled_events(context)
    _record(context, "app_uninstalled")


def tokens_revoked(event: dict[str, Any], context: BoltContext) -> None:
    revocations = _revocations(context)
    if revocations is not None:
        revocations.handle_tokens_revoked_events(event, context)
    # Revoked user tokens take nothing from creditbot, which posts as the bot.
    if (event.get("tokens") or {}).get("bot"):
        _record(context, "tokens_revoked")
