"""Who may do what (rule 11): anyone may see balances; top-ups and settings are for
billing admins, that is workspace admins and owners (from `users.info`) and the users the
account names in `billing_admins`."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)


def is_workspace_admin(client: WebClient, user_id: str) -> bool:
    """Whether Slack says `user_id` is an admin or owner of the workspace."""
    try:
        user = client.users_info(user=user_id).get("user") or {}
    except SlackApiError as exc:
        if exc.response.get("error") == "user_not_found":
            return False
        # Slack did not answer: not a refusal (an admin would be told they are not one)
        log.warning("users.info failed for %s: %s", user_id, exc.response.get("error"))
        raise
    return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))


def is_billing_admin(client: WebClient, billing_admins: list[str], user_id: str) -> bool:
    """Named billing admins are known without asking Slack; anyone else is looked up."""
    if user_id in (billing_admins or []):
        return True
    return is_workspace_admin(client, user_id)
