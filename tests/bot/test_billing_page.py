"""The billing page over HTTP: single-use sign-in links (used twice, expired, for another
account: refused), the session cookie, read-only members, CSRF, and the forms answering
with the Slack modals' rules and messages."""

from __future__ import annotations

import re
from datetime import timedelta

from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.models import Account, Agent
from tests.support.api_helpers import other_account
from tests.support.billing_page import *  # noqa: F403
from tests.support.billing_page import csrf, link, sign_in


def test_a_link_works_once_and_sets_a_strict_cookie(client, context, ids):
    token = link(context, ids["account"])
    first = client.get(f"/billing/{ids['account']}/sign-in/{token}", follow_redirects=False)
    cookie = first.headers["set-cookie"]
    assert first.status_code == 303
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/billing"):
        assert attribute in cookie
    page = client.get(f"/billing/{ids['account']}")
    assert page.status_code == 200 and "Available balance (wallet)" in page.text
    again = client.get(f"/billing/{ids['account']}/sign-in/{token}")
    assert again.status_code == 403 and "already used" in again.text


def test_expired_unknown_and_other_account_links_are_refused(client, context, ids):
    old = link(context, ids["account"], now=utcnow() - timedelta(minutes=11))
    assert "has expired" in client.get(f"/billing/{ids['account']}/sign-in/{old}").text
    assert client.get(f"/billing/{ids['account']}/sign-in/nope").status_code == 403
    other = other_account(context.sessions)["account"]
    theirs = link(context, other)
    answer = client.get(f"/billing/{ids['account']}/sign-in/{theirs}")
    assert answer.status_code == 403 and "for another account" in answer.text
    assert (
        client.get(f"/billing/{other}/sign-in/{theirs}", follow_redirects=False).status_code == 303
    )
    # the theirs-link was used for its own account; this browser may not see ours
    assert client.get(f"/billing/{ids['account']}").status_code == 403
    client.cookies.clear()
    assert client.get(f"/billing/{ids['account']}").status_code == 401


def test_members_read_and_cannot_change_anything(client, context, ids):
    sign_in(client, context, ids["account"], user="UMEMBER", can_edit=False)
    page = client.get(f"/billing/{ids['account']}").text
    assert "Continue to payment" not in page and "Save auto-recharge" not in page
    answer = client.post(f"/billing/{ids['account']}/auto-recharge",
                         data={"csrf": csrf(page), "enabled": "on", "threshold": "20", "amount": "50"})  # fmt: skip
    assert answer.status_code == 403 and "Only billing admins" in answer.text
    assert not transaction(
        context.sessions, lambda s: s.get(Account, ids["account"]).auto_recharge_enabled
    )


def test_forms_need_the_page_s_csrf_token(client, context, ids):
    sign_in(client, context, ids["account"])
    answer = client.post(
        f"/billing/{ids['account']}/agents/{ids['a']}",
        data={"behaviour": "use_balance", "limit": ""},
    )
    assert answer.status_code == 403 and "expired" in answer.text
    assert transaction(context.sessions, lambda s: s.get(Agent, ids["a"]).behaviour) == "stop"


def test_agent_settings_answer_like_the_modal(client, context, ids):
    sign_in(client, context, ids["account"])
    token = csrf(client.get(f"/billing/{ids['account']}").text)
    url = f"/billing/{ids['account']}/agents/{ids['a']}"
    bad = client.post(url, data={"csrf": token, "behaviour": "use_balance", "limit": "-3"})
    assert bad.status_code == 422
    assert re.search(r'id="agent-\d+-limit-error">[^<]*whole', bad.text)
    saved = client.post(
        url, data={"csrf": token, "behaviour": "use_balance", "limit": "50"}, follow_redirects=False
    )
    assert saved.status_code == 303
    agent = transaction(context.sessions, lambda s: s.get(Agent, ids["a"]))
    assert (agent.behaviour, agent.monthly_limit) == ("use_balance", 50_000)
    assert "Agent settings saved." in client.get(saved.headers["location"]).text
    missing = client.post(
        f"/billing/{ids['account']}/agents/999",
        data={"csrf": token, "behaviour": "stop", "limit": ""},
    )
    assert missing.status_code == 404


def test_user_strings_are_escaped_and_the_statement_downloads(client, context, ids):
    sign_in(client, context, ids["account"])
    page = client.get(f"/billing/{ids['account']}").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    month = utcnow().strftime("%Y-%m")
    csv = client.get(f"/billing/{ids['account']}/statement.csv", params={"month": month})
    assert csv.status_code == 200 and csv.text.startswith("entry,time,kind")
    assert (
        client.get(f"/billing/{ids['account']}/statement.csv", params={"month": "13"}).status_code
        == 422
    )
    assert client.get(f"/billing/{ids['account']}/chart.png").content.startswith(b"\x89PNG")
