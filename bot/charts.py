"""The usage chart: credits used per local day, stacked by agent, plan credits solid and the
wallet hatched; a PNG drawn with matplotlib's Agg canvas (no display, no pyplot state, so
requests can draw at once). Its words (alt text, a summary) come with it, for screen
readers and notifications.
"""

from __future__ import annotations

import io
from datetime import date, timedelta

from bot.usage_summary import UsageSummary
from ledger.units import MILLI, format_credits

#: Agents drawn on their own; the rest are stacked together as "other agents".
MAX_AGENTS = 6
# Colour-blind-safe (Okabe-Ito), and grey for the rest.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
OTHER = "#999999"


def _series(summary: UsageSummary) -> tuple[list[date], list[tuple[str, list[int], list[int]]]]:
    """The days of the range and, per agent drawn (most used first), milli-credits from
    the plan and from the wallet on each day."""
    days = [summary.start + timedelta(days=n) for n in range(summary.days)]
    index = {day: n for n, day in enumerate(days)}
    shown = [r.agent_id for r in summary.by_agent[:MAX_AGENTS]]
    names = {r.agent_id: r.agent or "?" for r in summary.by_agent}
    plan = {a: [0] * len(days) for a in [*shown, None]}
    wallet = {a: [0] * len(days) for a in [*shown, None]}
    for row in summary.by_agent_day:
        who = row.agent_id if row.agent_id in plan else None
        n = index[row.day]  # type: ignore[index]
        plan[who][n] += row.from_plan
        wallet[who][n] += row.from_wallet
    series = [(names[a], plan[a], wallet[a]) for a in shown]
    if any(plan[None]) or any(wallet[None]):
        series.append(("other agents", plan[None], wallet[None]))
    return days, series


def usage_chart_png(summary: UsageSummary) -> bytes:
    """The last days' usage as a PNG (about 800 x 340 pixels)."""
    from matplotlib.figure import Figure  # imported when first drawn: it takes a moment
    from matplotlib.patches import Patch

    days, series = _series(summary)
    figure = Figure(figsize=(8, 3.4), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    bottom = [0.0] * len(days)
    x = list(range(len(days)))
    legend = []
    for n, (name, plan, wallet) in enumerate(series):
        colour = COLOURS[n] if n < len(COLOURS) and name != "other agents" else OTHER
        # Credits as floats only to draw bars: every figure shown in words stays exact.
        plan_c = [p / MILLI for p in plan]
        wallet_c = [w / MILLI for w in wallet]
        axes.bar(x, plan_c, bottom=bottom, color=colour, width=0.8)
        bottom = [b + p for b, p in zip(bottom, plan_c, strict=True)]
        axes.bar(
            x, wallet_c, bottom=bottom, color="white", edgecolor=colour, hatch="///", width=0.8
        )
        bottom = [b + w for b, w in zip(bottom, wallet_c, strict=True)]
        legend.append(Patch(facecolor=colour, label=name[:24]))
    legend.append(
        Patch(facecolor="white", edgecolor="#333333", hatch="///", label="from the wallet")
    )
    step = max(1, len(days) // 10)
    axes.set_xticks(x[::step], [f"{d.day} {d:%b}" for d in days[::step]], fontsize=8)
    axes.set_xlim(-0.6, len(days) - 0.4)
    axes.set_ylabel("credits")
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_title(
        f"{summary.account_name}: credits used per day, {_span(summary)}", fontsize=10, loc="left"
    )
    if not series:
        axes.text(
            0.5, 0.5, "No usage in these days", ha="center", va="center", transform=axes.transAxes
        )
        axes.set_ylim(0, 1)
    figure.legend(handles=legend, fontsize=8, frameon=False, loc="outside lower center", ncols=4)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _span(summary: UsageSummary) -> str:
    return f"{summary.start.day} {summary.start:%b} to {summary.end.day} {summary.end:%b %Y}"


def chart_alt_text(summary: UsageSummary) -> str:
    """What the chart shows, in words (Slack's alt text, the page's figure caption)."""
    total = summary.total
    if not total.total:
        return f"Chart of credits used per day, {_span(summary)}: no usage."
    top = ", ".join(f"{r.agent} {format_credits(r.total)}" for r in summary.by_agent[:MAX_AGENTS])
    return (
        f"Chart of credits used per day by agent, {_span(summary)}: "
        f"{format_credits(total.total)} credits in all, {format_credits(total.from_plan)} from "
        f"plan credits and {format_credits(total.from_wallet)} from the wallet. By agent: {top}."
    )
