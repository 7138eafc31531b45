"""Done when (issue 12): on a generated month of traffic for three agents, the usage figures
of the API, the CLI, the Slack chart and the billing page all equal the journal."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta

import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import case, func, select

from bot.charts import _series, chart_alt_text
from bot.slack.blocks.usage import usage_message
from bot.usage_summary import load_usage_summary
from ledger.agents import add_agent
from ledger.calls import continue_call, end_call, start_call
from ledger.charges import charge
from ledger.db import make_engine, make_session_factory, transaction
from ledger.models import Agent, Entry, Transfer
from ledger.units import format_credits
from ledger.web_access import issue_sign_in_link
from tests.support.api_helpers import make_api
from tests.support.factories import story

NOW = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)


def month_of_traffic(sessions):
    """30 days of messages and per-second calls (with refunds) for agents A, B and C."""
    ids = story(sessions, plan=20_000, wallet=20_000, per_second=True, now=NOW - timedelta(days=35))
    ids["c"] = transaction(
        sessions, lambda s: add_agent(s, ids["account"], "C", behaviour="use_balance").id
    )
    rng = random.Random(12)

    def day(s, n):
        at = NOW - timedelta(days=n, hours=rng.randint(0, 10))
        for agent in ("a", "b", "c"):
            for k in range(rng.randint(0, 3)):
                charge(s, ids["account"], ids[agent], "message", rng.randint(1, 40),
                       idempotency_key=f"m{n}{agent}{k}", now=at + timedelta(minutes=k))  # fmt: skip
            if rng.random() < 0.5:
                call = start_call(
                    s, ids["account"], ids[agent], idempotency_key=f"c{n}{agent}", now=at
                )
                minutes = rng.randint(1, 4)
                for m in range(2, minutes + 1):
                    continue_call(
                        s, ids["account"], call.call_id, m, now=at + timedelta(minutes=m - 1)
                    )
                end_call(s, ids["account"], call.call_id, (minutes - 1) * 60 + rng.randint(1, 59),
                         now=at + timedelta(minutes=minutes))  # fmt: skip

    for n in range(29, -1, -1):
        transaction(sessions, lambda s, n=n: day(s, n))
    return ids


def journal_by_agent(sessions, account_id):
    """Credits used per agent name, straight from the transfers (refunds subtract)."""
    into_usage = case((Transfer.credit_book == "usage", Transfer.amount), else_=-Transfer.amount)
    rows = transaction(sessions, lambda s: s.execute(
        select(Agent.name, func.sum(into_usage))
        .join(Entry, Entry.id == Transfer.entry_id).join(Agent, Agent.id == Entry.agent_id)
        .where(Transfer.account_id == account_id, Entry.kind.in_(("usage", "refund")))
        .group_by(Agent.name)
    ).all())  # fmt: skip
    return {name: int(total) for name, total in rows if total}


def test_every_surface_agrees_with_the_journal(db_url, run):
    with time_machine.travel(NOW, tick=True):
        engine = make_engine(db_url)
        sessions = make_session_factory(engine)
        ids = month_of_traffic(sessions)
        truth = journal_by_agent(sessions, ids["account"])
        assert set(truth) == {"A", "B", "C"} and all(truth.values())

        api = make_api(db_url, ids["account"])
        body = api.get("/v1/usage", params={"group_by": "agent"}).json()
        assert {r["agent"]: r["total_millicredits"] for r in body["rows"]} == truth

        cli = json.loads(
            run("usage", "--account", "Acme", "--by", "agent", "--format", "json").output
        )
        assert {r["agent"]: r["total_millicredits"] for r in cli["rows"]} == truth

        summary = load_usage_summary(api.context, ids["account"])
        _, series = _series(summary)
        assert {name: sum(plan) + sum(wallet) for name, plan, wallet in series} == truth
        alt = chart_alt_text(summary)
        for name, total in truth.items():
            assert f"{name} {format_credits(total)}" in alt
        slack_text = usage_message(summary, None)["text"]
        assert all(
            f"{name}: {format_credits(total)}" in slack_text for name, total in truth.items()
        )

        token = transaction(
            sessions, lambda s: issue_sign_in_link(s, ids["account"], "UADMIN", can_edit=True)
        )
        with TestClient(api.app, base_url="https://testserver") as browser:
            browser.get(f"/billing/{ids['account']}/sign-in/{token}")
            page = browser.get(f"/billing/{ids['account']}").text
        table = page[page.index('id="usage-by-agent"') :]
        for name, total in truth.items():
            assert re.search(
                rf'<th scope="row">{name}</th>(<td>[^<]*</td>){{4}}<td>{re.escape(format_credits(total))}</td>',
                table,
            )
        api.context.engine.dispose()
        engine.dispose()
