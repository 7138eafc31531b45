"""What one alert says beyond Slack: a webhook event (JSON, Standard Webhooks' `type`,
`timestamp`, `data`) and an email (a subject and plain text).

Event data is the alert's own payload (credits in milli-credits, money in minor units of
`currency`) with the account named; `agent.stopped` and `agent.resumed` carry what a
runtime needs to act: the agent, its new status and why. The email's text is the wording
of the Slack alert, turned back into plain text (no mrkdwn escapes, mentions or emoji), so
each medium encodes user text its own way: JSON escapes it, the email's headers are
encoded by the `email` package and its HTML part is escaped (bot/outbound/email.py).
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from bot.slack.blocks.alerts import RENDERERS, AlertFacts, unknown_kind
from bot.slack.blocks.mrkdwn import Mrkdwn, escape
from ledger.deliveries import Due
from ledger.outbox import AgentEvent, Alert

TITLES: dict[str, str] = {
    Alert.PLAN_LOW: "Plan credits are running low",
    Alert.PLAN_EXHAUSTED: "Plan credits are used up",
    Alert.PLAN_RECOVERED: "Plan credits are back above their alert levels",
    Alert.WALLET_LOW: "The wallet is low",
    Alert.WALLET_RECOVERED: "The wallet is back above its alert levels",
    Alert.LIMIT_LEVEL: "An agent passed an alert level of its monthly limit",
    Alert.LIMIT_80: "An agent used 80% of its monthly limit",
    Alert.LIMIT_100: "An agent reached its monthly limit",
    Alert.BUDGET_LEVEL: "The agents passed an alert level of the monthly budget",
    Alert.BUDGET_REACHED: "The monthly budget is used up: every agent stopped",
    Alert.AGENT_STOPPED: "An agent stopped",
    Alert.AGENT_RESUMED: "An agent resumed",
    Alert.TOPUP_RECEIVED: "Top-up received",
    Alert.RECHARGE_SUCCEEDED: "Auto-recharge succeeded",
    Alert.RECHARGE_FAILED: "Auto-recharge failed",
    Alert.AUTO_RECHARGE_PAUSED: "Auto-recharge paused",
    Alert.REFUND_SHORTFALL: "A refund took back more than the wallet held",
    Alert.CYCLE_RENEWED: "New cycle: plan credits renewed",
}

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)>")
#: creditbot's emoji, which opens an alert's text (and, in a top-up's alert, the sentence
#: naming the agents still waiting: bot/slack/blocks/until_top_up.py).
_EMOJI = re.compile(r"^:[a-z0-9_+-]+: ")
_WAITING = " :hourglass: "


def event_body(row: Due) -> dict[str, Any]:
    """The webhook event for one delivery row."""
    data: dict[str, Any] = {
        "account_id": row.account_id,
        "account_name": row.account_name,
        "alert_id": row.message_id,
        "currency": row.currency,
    }
    payload = row.payload
    if row.event_type == AgentEvent.STOPPED:
        data.update(agent_id=payload.get("agent_id"), agent_name=payload.get("agent_name"),
                    status="stopped", reason=payload.get("reason"))  # fmt: skip
    elif row.event_type == AgentEvent.RESUMED:
        data.update(agent_id=payload.get("agent_id"), agent_name=payload.get("agent_name"),
                    status="active", previous_reason=payload.get("previous_reason"),
                    cause=payload.get("cause"))  # fmt: skip
    else:
        data.update(payload)
    if row.request_id:
        data["request_id"] = row.request_id
    timestamp = row.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {"type": row.event_type, "timestamp": timestamp, "data": data}


def plain(text: str) -> str:
    """A Slack alert's words as plain text: creditbot's emoji and the bold marks around an
    agent's name dropped; in safe mrkdwn, mentions named and `&amp;` `&lt;` `&gt;` back to
    what was typed (text that is not mrkdwn yet is already as typed)."""
    if isinstance(text, Mrkdwn):
        text = _MENTION.sub(r"Slack user \1", text)
        text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return _EMOJI.sub("", str(text), count=1).replace(_WAITING, " ", 1)


def alert_text(row: Due) -> str:
    """The alert in words, as the Slack channel reads it, in plain text."""
    facts = AlertFacts(row.payload, row.currency, row.timezone, row.next_renewal_at)
    render = RENDERERS.get(row.kind)  # type: ignore[call-overload]  # an Alert is a str
    text, _ = render(facts) if render else unknown_kind(row.kind)
    names = [row.payload.get("agent_name")]
    names += [w.get("name") for w in row.payload.get("waiting_agents") or [] if isinstance(w, dict)]
    for name in {n for n in names if isinstance(n, str)}:
        shown = escape(name) if isinstance(text, Mrkdwn) else name
        text = type(text)(text.replace(f"*{shown}*", shown))  # Slack's bold, not the name's
    return plain(text)


def subject(row: Due) -> str:
    """`creditbot · <account>: <what happened>` on one line."""
    title = TITLES.get(row.kind) or row.kind.removeprefix("alert.").replace("_", " ").capitalize()
    return " ".join(f"creditbot · {row.account_name}: {title}".split())
