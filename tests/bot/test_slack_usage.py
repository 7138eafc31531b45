"""/usage and the usage section of /balance through the real server and Bolt app: the chart
image behind a short-lived signed link, its words, the agents against their limits, the
forecast, and a month's statement as a signed CSV link."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from bot.context import build_context
from ledger.agents import update_agent
from ledger.charges import charge
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.models.web import WebSession
from ledger.units import credits
from tests.support.factories import story
from tests.support.slack_harness import *  # noqa: F403
from tests.support.slack_harness import (
    MEMBER,
    Server,
    Slack,
    buttons,
    response_posts,
    settings_for,
    texts,
)

PUBLIC = "https://creditbot.example"


@pytest.fixture
def context(sqlite_url, fake_slack):
    ctx = build_context(settings_for(sqlite_url, fake_slack, public_url=PUBLIC))
    yield ctx
    ctx.engine.dispose()


@pytest.fixture
def ids(context):
    now = utcnow()
    ids = story(context.sessions, plan=110, wallet=500, now=now - timedelta(days=40))

    def work(s):
        update_agent(s, ids["account"], ids["a"], monthly_limit=credits(50))
        charge(
            s,
            ids["account"],
            ids["a"],
            "message",
            5,
            idempotency_key="a1",
            now=now - timedelta(hours=1),
        )
        for day in range(1, 4):  # agent B: 40 credits a day, plan first then the wallet
            charge(
                s,
                ids["account"],
                ids["b"],
                "message",
                40,
                idempotency_key=f"b{day}",
                now=now - timedelta(days=day),
            )

    transaction(context.sessions, work)
    return ids


def local(url: str, server: Server) -> str:
    """The public link as the test reaches it: the same path and query on the loopback server."""
    parts = urlsplit(url)
    return f"{server.url}{parts.path}?{parts.query}"


def test_usage_shows_the_chart_agents_and_forecast(fake_slack, context, ids):
    with Server(context) as server:
        slack = Slack(server.url, fake_slack, context)
        _, url = slack.command("/usage", user=MEMBER)  # anyone may see usage
        [reply] = response_posts(fake_slack, url)
        [image] = [b for b in reply["blocks"] if b["type"] == "image"]
        assert image["image_url"].startswith(f"{PUBLIC}/usage/{ids['account']}/chart.png?to=")
        assert (
            "125 credits in all, 110 from plan credits and 15 from the wallet" in image["alt_text"]
        )
        assert "By agent: B 120, A 5." in image["alt_text"]
        seen = texts(reply["blocks"])
        assert "*Last 30 days:* 125 credits (110 from plan credits, 15 from the wallet)" in seen
        assert "*A*: 5 of 50 credits this month (10% of its limit)" in seen
        assert "*B*: 120 credits this month, no limit" in seen
        assert "pace" in seen and reply["text"].startswith(
            "Acme: 125 credits used in the last 30 days"
        )
        assert "Open billing page" in buttons(reply["blocks"])

        chart = httpx.get(local(image["image_url"], server))
        assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
        assert chart.content.startswith(b"\x89PNG")
        query = parse_qs(urlsplit(image["image_url"]).query)
        tampered = image["image_url"].replace(query["to"][0], "2020-01-01")
        refused = httpx.get(local(tampered, server))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "link_refused"
        past = image["image_url"].replace(
            query["expires"][0], str(int(datetime.now(UTC).timestamp()) - 1)
        )
        assert httpx.get(local(past, server)).status_code == 403
        other = image["image_url"].replace(
            f"/usage/{ids['account']}/", f"/usage/{ids['account'] + 1}/"
        )
        assert httpx.get(local(other, server)).status_code == 403


def test_a_month_s_statement_is_a_signed_csv_link(fake_slack, context, ids):
    month = utcnow().strftime("%Y-%m")
    with Server(context) as server:
        slack = Slack(server.url, fake_slack, context)
        _, url = slack.click("statement_month", user=MEMBER, extra={"type": "static_select",
                             "selected_option": {"value": month}})  # fmt: skip
        [reply] = response_posts(fake_slack, url)
        link = buttons(reply["blocks"])[f"Download {month} (CSV)"]["url"]
        assert link.startswith(f"{PUBLIC}/usage/{ids['account']}/statement-{month}.csv?")
        answer = httpx.get(local(link, server))
        assert answer.status_code == 200 and "attachment" in answer.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert rows and all(r["time"].startswith(month) for r in rows)
        # balances run on from the months before: the last line is today's wallet
        assert rows[-1]["wallet_balance"] == "485"
        assert httpx.get(local(link.replace(month, "2020-01"), server)).status_code == 403


def test_balance_has_the_usage_section(fake_slack, context, ids):
    with Server(context) as server:
        slack = Slack(server.url, fake_slack, context)
        _, url = slack.command("/balance")
        [reply] = response_posts(fake_slack, url)
    assert any(b["type"] == "image" for b in reply["blocks"])
    assert "*Last 30 days:* 125 credits" in texts(reply["blocks"])
    assert {"Open billing page", "Top up"} <= set(buttons(reply["blocks"]))


@pytest.mark.parametrize("user, can_edit", [(MEMBER, False), ("UADMIN", True)])
def test_open_billing_page_gives_the_presser_a_single_use_link(
    fake_slack, context, ids, user, can_edit
):
    with Server(context) as server:
        slack = Slack(server.url, fake_slack, context)
        _, url = slack.click("open_billing_page", user=user)
        [reply] = response_posts(fake_slack, url)
        link = buttons(reply["blocks"])["Open billing page"]["url"]
        assert link.startswith(f"{PUBLIC}/billing/{ids['account']}/sign-in/")
        assert "yours alone and works once, for 10 minutes" in reply["text"]
        first = httpx.get(local(link, server), follow_redirects=False)
        assert first.status_code == 303 and "creditbot_billing=" in first.headers["set-cookie"]
        assert httpx.get(local(link, server)).status_code == 403
    sessions = transaction(
        context.sessions, lambda s: s.execute(select(WebSession)).scalars().all()
    )
    assert [(w.slack_user_id, w.can_edit) for w in sessions] == [(user, can_edit)]


def test_agent_names_cannot_inject_markup_into_usage(fake_slack, context, ids):
    from ledger.agents import add_agent

    evil = "<!channel> <https://evil.example/pay|Acme billing> & co"

    def work(s):
        agent = add_agent(s, ids["account"], evil, behaviour="use_balance")
        charge(s, ids["account"], agent.id, "message", 2, idempotency_key="evil", now=utcnow())

    transaction(context.sessions, work)
    with Server(context) as server:
        slack = Slack(server.url, fake_slack, context)
        _, url = slack.command("/usage")
        [reply] = response_posts(fake_slack, url)
    escaped = "&lt;!channel&gt; &lt;https://evil.example/pay|Acme billing&gt; &amp; co"
    assert evil not in texts(reply["blocks"]) and evil not in reply["text"]
    assert escaped in texts(reply["blocks"]) and escaped in reply["text"]
