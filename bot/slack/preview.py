"""Every Slack surface of an account as Block Kit JSON, without a workspace
(`creditbot slack preview`): `/balance`, the Home tab, the four modals, and each alert
kind, filled from the account's own data (alerts with a plausible event of their kind).
Built by the same builders the app uses, so what is previewed is what Slack gets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session

from bot.context import AppContext
from bot.slack import blocks
from bot.slack.dashboard_data import Dashboard, load_dashboard
from bot.slack.listeners.modals import agent_modal_for
from ledger.accounts import AgentView
from ledger.db import transaction
from ledger.models import Account
from ledger.outbox import ALERT_PREFIX, Alert
from ledger.units import MILLI, money_to_credits

BUILDER = "https://app.slack.com/block-kit-builder#"
#: Surfaces other than alerts; alerts are named by their kind (`plan_low`, ...).
SCREENS = ("balance", "home", "topup-modal", "auto-recharge-modal", "agent-modal",
           "spend-controls-modal")  # fmt: skip
ALERT_NAMES = tuple(kind.removeprefix(ALERT_PREFIX) for kind in Alert)
SURFACES = SCREENS + ALERT_NAMES


@dataclass(frozen=True)
class Surface:
    """One surface: what Slack receives (a message or a view) and how it is shown."""

    name: str
    kind: str  # "message", "modal" or "home"
    payload: dict[str, Any]

    def builder_link(self) -> str:
        """Slack's Block Kit Builder with this surface loaded."""
        shown = self.payload if self.kind != "message" else {"blocks": self.payload["blocks"]}
        return BUILDER + quote(json.dumps(shown, separators=(",", ":")), safe="")


@dataclass(frozen=True)
class _Facts:
    """What the previews need beyond the dashboard."""

    account: Account
    board: Dashboard
    fix_url: str


def _sample_agent(board: Dashboard) -> AgentView:
    """The account's first agent with a limit, else its first, else a made-up one."""
    agents = board.balance.agents
    limited = [a for a in agents if a.monthly_limit]
    if limited or agents:
        return (limited or agents)[0]
    return AgentView(0, "support-bot", "active", None, "stop", 500 * MILLI, 0)


def _agent_facts(agent: AgentView) -> dict[str, Any]:
    return {"agent_id": agent.id or None, "agent_name": agent.name}


def _alert_payload(alert: Alert, f: _Facts) -> dict[str, Any]:
    """A payload of `alert`'s kind as the ledger writes it, from the account's figures."""
    a, view = f.account, f.board.balance
    agent = _sample_agent(f.board)
    limit = agent.monthly_limit or 500 * MILLI
    amount = a.auto_recharge_amount_minor or a.topup_min_minor
    bought = money_to_credits(amount, a.currency, a.credits_per_unit)
    money = {"amount_minor": amount, "currency": a.currency}
    budget = a.monthly_budget or 5_000 * MILLI
    waiting = [{"id": agent.id or 1, "name": agent.name, "reason": "plan_exhausted"}]
    payloads: dict[Alert, dict[str, Any]] = {
        Alert.PLAN_LOW: {
            "plan_balance": min(view.plan_balance, view.plan_grant * a.plan_low_percent // 100),
            "plan_grant": view.plan_grant,
        },
        Alert.PLAN_EXHAUSTED: {"plan_balance": 0},
        Alert.WALLET_LOW: {
            "wallet_balance": min(view.wallet_balance, max(0, a.wallet_low_credits - MILLI)),
            "threshold": a.wallet_low_credits,
        },
        Alert.PLAN_RECOVERED: {"plan_balance": view.plan_grant, "plan_grant": view.plan_grant},
        Alert.WALLET_RECOVERED: {"wallet_balance": view.wallet_balance + bought},
        Alert.LIMIT_LEVEL: {
            **_agent_facts(agent),
            "month_spend": limit // 2,
            "limit": limit,
            "level": 50,
        },  # fmt: skip
        Alert.BUDGET_LEVEL: {"month_spend": budget * 4 // 5, "budget": budget, "level": 80},
        Alert.BUDGET_REACHED: {"month_spend": budget, "budget": budget},
        Alert.LIMIT_80: {**_agent_facts(agent), "month_spend": limit * 4 // 5, "limit": limit},
        Alert.LIMIT_100: {**_agent_facts(agent), "month_spend": limit, "limit": limit},
        Alert.AGENT_STOPPED: {
            **_agent_facts(agent),
            "reason": agent.stop_reason or "plan_exhausted",
        },
        Alert.AGENT_RESUMED: {
            **_agent_facts(agent),
            "previous_reason": "plan_exhausted",
            "cause": "wallet_credit",
        },  # fmt: skip
        Alert.TOPUP_RECEIVED: {
            **money,
            "source": "checkout",
            "credits": bought,
            "wallet_balance": view.wallet_balance + bought,
            "requested_by": None,
            "waiting_agents": waiting,
        },  # fmt: skip
        Alert.RECHARGE_SUCCEEDED: {
            **money,
            "credits": bought,
            "wallet_balance": view.wallet_balance + bought,
        },  # fmt: skip
        Alert.RECHARGE_FAILED: {
            **money,
            "reason": "card_declined",
            "decline_code": "generic_decline",
            "message": "Your card was declined.",
            "fix_url": f.fix_url,
        },  # fmt: skip
        Alert.AUTO_RECHARGE_PAUSED: {
            "failures": 3,
            "reason": "card_declined",
            "fix_url": f.fix_url,
        },
        Alert.REFUND_SHORTFALL: {
            "refunded_minor": amount,
            "currency": a.currency,
            "taken": view.wallet_balance,
            "shortfall": max(MILLI, bought - view.wallet_balance),
            "wallet_balance": 0,
        },  # fmt: skip
        Alert.CYCLE_RENEWED: {
            "cycle_start": view.cycle_start.isoformat() if view.cycle_start else None,
            "granted": a.plan_credits_per_cycle,
            "expired": view.plan_balance,
            "next_renewal_at": (
                view.next_renewal_at or f.board.now + timedelta(days=30)
            ).isoformat(),
        },
    }
    return payloads[alert]


def _alert(alert: Alert, f: _Facts) -> Surface:
    a = f.account
    message = blocks.alert_message(
        alert.value,
        _alert_payload(alert, f),
        account_name=a.name,
        currency=a.currency,
        timezone=a.timezone,
        next_renewal_at=a.next_renewal_at,
    )
    return Surface(alert.value.removeprefix(ALERT_PREFIX), "message", message)


def _agent_modal(f: _Facts) -> Surface:
    agents = f.board.balance.agents
    if not agents:  # what an admin is told instead of the modal
        return Surface("agent-modal", "message", blocks.info_message(blocks.no_agents_text()))
    return Surface("agent-modal", "modal", agent_modal_for(agents, f.account.id, None))


_SCREENS: dict[str, Callable[[_Facts], Surface]] = {
    "balance": lambda f: Surface("balance", "message", blocks.balance_message(f.board)),
    "home": lambda f: Surface("home", "home", blocks.home_view(f.board)),
    "topup-modal": lambda f: Surface(
        "topup-modal",
        "modal",
        blocks.topup_modal(
            f.account.currency, f.account.topup_min_minor, f.account.topup_max_minor
        ),
    ),  # fmt: skip
    "auto-recharge-modal": lambda f: Surface(
        "auto-recharge-modal", "modal", blocks.auto_recharge_modal(f.board)
    ),
    "agent-modal": _agent_modal,
    "spend-controls-modal": lambda f: Surface(
        "spend-controls-modal", "modal", blocks.spend_controls_modal(f.board)
    ),
}


def _facts(context: AppContext, account_id: int) -> _Facts:
    from bot.stripe.client import fix_link_base

    board = load_dashboard(context, account_id)
    account = transaction(context.sessions, lambda s: _account(s, account_id))
    return _Facts(account, board, fix_link_base(context) + "preview")


def _account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    assert account is not None, "load_dashboard found it"
    return account


def preview(
    context: AppContext, account_id: int, names: tuple[str, ...] = SURFACES
) -> list[Surface]:
    """The surfaces `names` of the account, in that order."""
    unknown = [n for n in names if n not in SURFACES]
    if unknown:
        raise ValueError(f"no surface {unknown[0]!r}: one of {', '.join(SURFACES)}")
    facts = _facts(context, account_id)
    made = []
    for name in names:
        if name in _SCREENS:
            made.append(_SCREENS[name](facts))
        else:
            made.append(_alert(Alert(ALERT_PREFIX + name), facts))
    return made
