"""The billing page's budget and recharge-to-a-target forms: the Slack modals' rules and
messages, the changes audited as made on the web by the signed-in person."""

from __future__ import annotations

from ledger.audit import list_events
from ledger.db import transaction
from ledger.models import Account
from tests.support.billing_page import *  # noqa: F403
from tests.support.billing_page import csrf, sign_in
from tests.support.factories import card_saved


def _account(context, ids):
    return transaction(context.sessions, lambda s: s.get(Account, ids["account"]))


def test_the_budget_is_shown_and_set_on_the_page(client, context, ids):
    sign_in(client, context, ids["account"])
    page = client.get(f"/billing/{ids['account']}").text
    assert "Monthly budget, all agents" in page and "none (" in page
    bad = client.post(f"/billing/{ids['account']}/budget",
                      data={"csrf": csrf(page), "budget": "2.5"})  # fmt: skip
    assert bad.status_code == 422 and "not a budget" in bad.text
    assert _account(context, ids).monthly_budget is None
    saved = client.post(f"/billing/{ids['account']}/budget",
                        data={"csrf": csrf(page), "budget": "1,500"}, follow_redirects=False)  # fmt: skip
    assert saved.status_code == 303
    assert _account(context, ids).monthly_budget == 1_500_000
    shown = client.get(f"/billing/{ids['account']}").text
    assert "0 of 1,500 used" in shown
    [event] = transaction(context.sessions, lambda s: list_events(s, ids["account"], limit=1))
    assert (event.action, event.actor_kind, event.actor, event.source) == (
        "budget",
        "web_user",
        "UADMIN",
        "web",
    )


def test_auto_recharge_tops_up_to_a_target_from_the_page(client, context, ids):
    card_saved(context.sessions, ids["account"])
    sign_in(client, context, ids["account"])
    page = client.get(f"/billing/{ids['account']}").text
    form = {"csrf": csrf(page), "enabled": "on", "mode": "target", "threshold": "10",
            "amount": "", "target": "8", "monthly_cap": ""}  # fmt: skip
    low = client.post(f"/billing/{ids['account']}/auto-recharge", data=form)
    assert low.status_code == 422 and "above the threshold ($10.00)" in low.text
    ok = client.post(f"/billing/{ids['account']}/auto-recharge",
                     data={**form, "target": "60"}, follow_redirects=False)  # fmt: skip
    assert ok.status_code == 303
    account = _account(context, ids)
    assert (account.auto_recharge_mode, account.auto_recharge_target_minor) == ("target", 6000)
    shown = client.get(f"/billing/{ids['account']}").text
    assert "top it back up to $60.00" in shown
    # The story's wallet holds 500 credits ($5.00): a recharge now buys the $55.00 it lacks.
    assert "A recharge now would charge $55.00." in shown
