""" "Until you top up": Stop agents that a top-up cannot serve by itself, named with one
button each (and one for all) that switches them to Use balance and resumes them.

The customer text says a Stop agent "stops working until you top up or the cycle renews",
while a Stop agent never spends the wallet (rule 3). creditbot never switches an agent on
its own: when money lands, or on `/balance`, it names the Stop agents waiting for plan
credits or their limit and offers billing admins the switch (docs/slack.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.slack.blocks.base import (
    AGENT_USE_BALANCE,
    AGENTS_USE_BALANCE_ALL,
    STOP_REASONS,
    Block,
    actions,
    button,
    section,
)
from bot.slack.blocks.mrkdwn import Mrkdwn, md
from ledger.accounts import AgentView
from ledger.agents import WAITING_REASONS

#: Agents with a button of their own; the rest are switched by "all".
MAX_BUTTONS = 5
#: Agents named in the text.
MAX_NAMED = 10

#: A waiting agent: its id, name and why it stopped.
Waiting = tuple[int, str, str]


def waiting_of_views(agents: Iterable[AgentView]) -> list[Waiting]:
    """The Stop agents stopped for plan credits or their limit, among `agents`."""
    return [
        (a.id, a.name, a.stop_reason or "")
        for a in agents
        if a.status == "stopped" and a.behaviour == "stop" and a.stop_reason in WAITING_REASONS
    ]


def waiting_of_payload(items: Any) -> list[Waiting]:
    """The waiting agents an alert's payload lists (`ledger.agents.waiting_list`)."""
    found = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("id"), int):
            found.append((item["id"], str(item.get("name") or item["id"]), str(item.get("reason"))))
    return found


def waiting_text(waiting: list[Waiting]) -> Mrkdwn:
    """Who still waits, and why, in a sentence."""
    names = Mrkdwn(", ").join(
        md("*{}* ({})", name, STOP_REASONS.get(reason, reason))
        for _, name, reason in waiting[:MAX_NAMED]
    )
    more = len(waiting) - MAX_NAMED
    if more > 0:
        names += md(" and {} more", more)
    return md(
        ":hourglass: Set to Stop, so still waiting for the renewal or a new month: {}."
        " Switch them to Use balance to run on the wallet now.",
        names,
    )


def use_balance_buttons(waiting: list[Waiting]) -> list[dict[str, Any]]:
    """One button per waiting agent (the first few) and one for all of them."""
    # Action ids are unique within a block: each button carries its agent's id in its own.
    buttons = [
        button(f"Use balance: {name}", f"{AGENT_USE_BALANCE}:{agent_id}", str(agent_id))
        for agent_id, name, _ in waiting[:MAX_BUTTONS]
    ]
    if len(waiting) > 1:
        buttons.append(button(f"Use balance for all {len(waiting)}", AGENTS_USE_BALANCE_ALL,
                              "all", style="primary"))  # fmt: skip
    return buttons


def until_top_up_blocks(waiting: list[Waiting]) -> list[Block]:
    """The dashboard's section: the waiting agents and their buttons (none when nobody waits)."""
    if not waiting:
        return []
    return [
        section(waiting_text(waiting), block_id="waiting_agents"),
        actions(*use_balance_buttons(waiting), block_id="waiting_agents_actions"),
    ]


def switched_text(done: list[tuple[str, bool]]) -> Mrkdwn:
    """What "Use balance" did: each agent switched, resumed or still stopped."""
    if not done:
        return md("No agent is waiting for a top-up any more: nothing to switch.")
    resumed = [name for name, ok in done if ok]
    waiting = [name for name, ok in done if not ok]
    text = md(":white_check_mark: Switched to Use balance: {}.", ", ".join(n for n, _ in done))
    if resumed:
        text += md(" Resumed: {}.", ", ".join(resumed))
    if waiting:
        text += md(
            " Still stopped, the wallet cannot pay for them yet: {}. Top up to resume them.",
            ", ".join(waiting),
        )
    return text
