"""What the billing page shows and how it is rendered: the dashboard Slack shows (wallet,
plan credits, next renewal, the monthly budget, forecast, auto-recharge and what a recharge
would charge now, card, agents, the last 30 days of usage) plus recent top-ups and recharge
attempts, through autoescaping templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from bot.charts import chart_alt_text
from bot.context import AppContext
from bot.slack.blocks.auto_recharge_modal import recharge_now_text
from bot.slack.blocks.base import BEHAVIOURS, RECHARGE_REASONS, STOP_REASONS, day_text
from bot.slack.blocks.base import money_input_text as money_text
from bot.slack.blocks.usage import forecast_words
from bot.slack.dashboard_data import Dashboard, load_dashboard
from ledger.db import transaction
from ledger.recharges import list_recharges
from ledger.topups import list_topups
from ledger.units import format_credits, format_money
from ledger.web_access import SignedIn

HERE = Path(__file__).parent
#: Recent top-ups and recharge attempts shown.
RECENT = 10

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["credits"] = format_credits


@dataclass(frozen=True)
class Payment:
    """A top-up or recharge attempt as a row of the page."""

    at: datetime
    what: str
    amount: str
    outcome: str


@dataclass
class Form:
    """What a submitted form said and what was wrong with it, to show it again."""

    name: str
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _payments(session: Session, account_id: int) -> tuple[list[Payment], list[Payment]]:
    topups = [
        Payment(
            t.paid_at or t.created_at,
            {"checkout": "Top-up (Checkout)", "saved_card": "Top-up (saved card)"}.get(
                t.source, "Auto-recharge"
            ),
            format_money(t.amount_minor, t.currency),
            f"{t.status}, {format_credits(t.credited)} credits"
            + (
                f", {format_money(t.refunded_minor, t.currency)} refunded"
                if t.refunded_minor
                else ""
            ),
        )
        for t in list_topups(session, account_id, limit=RECENT)
    ]
    recharges = [
        Payment(
            r.finished_at or r.created_at,
            f"Auto-recharge ({r.trigger})",
            format_money(r.amount_minor, r.currency),
            r.status
            + (f": {RECHARGE_REASONS.get(r.reason, r.reason)}" if r.reason else "")
            + (f" ({r.decline_code})" if r.decline_code else ""),
        )
        for r in list_recharges(session, account_id, limit=RECENT)
    ]
    return topups, recharges


def render_page(
    context: AppContext,
    signed: SignedIn,
    *,
    form: Form | None = None,
    notice: str | None = None,
) -> str:
    """The whole page for the signed-in person; `form` shows a refused form again with its
    errors beside its fields."""
    d: Dashboard = load_dashboard(context, signed.account_id)
    topups, recharges = transaction(context.sessions, lambda s: _payments(s, signed.account_id))
    usage = d.usage
    assert usage is not None
    agents_by_id = {a.id: a for a in d.balance.agents}
    return templates.get_template("billing.html").render(
        d=d,
        b=d.balance,
        usage=usage,
        spend={r.agent_id: r for r in usage.by_agent},
        agents=[agents_by_id[a.id] for a in d.balance.agents],
        signed=signed,
        form=form or Form(""),
        notice=notice,
        topups=topups,
        recharges=recharges,
        forecast=forecast_words(d.forecast, d.timezone),
        chart_alt=chart_alt_text(usage),
        renewal=day_text(d.balance.next_renewal_at, d.timezone)
        if d.balance.next_renewal_at
        else "not scheduled",
        money=lambda minor: format_money(minor, d.currency),
        money_text=lambda minor: money_text(minor, d.currency),
        day=lambda moment: day_text(moment, d.timezone),
        behaviours=BEHAVIOURS,
        stop_reasons=STOP_REASONS,
        plan_percent=0
        if not d.balance.plan_grant
        else d.balance.plan_balance * 100 // d.balance.plan_grant,
        budget_percent=0
        if not d.balance.monthly_budget
        else min(100, d.balance.month_spend * 100 // d.balance.monthly_budget),
        recharge_now=recharge_now_text(d),
    )


def render_message(title: str, text: str, *, link: tuple[str, str] | None = None) -> str:
    """A small page that says one thing (signed out, a refused link, not allowed)."""
    return templates.get_template("message.html").render(title=title, text=text, link=link)
