"""Spend controls in Slack, through the real server and Bolt app: the "Budget and alerts"
modal, a budget that stops every agent, "until you top up" buttons on a top-up alert and
`/balance`, auto-recharge to a target with what it would cost now, and the latest changes
on the Home tab, each change named after the person who made it."""

from __future__ import annotations

from bot.slack.alerts import deliver_due_alerts
from ledger.accounts import set_alert_channel
from ledger.audit import list_events
from ledger.budget import budget_view
from ledger.charges import charge
from ledger.db import transaction
from ledger.models import Account, Agent
from ledger.topups import record_payment
from ledger.units import credits
from ledger.wallet import debit_wallet
from tests.support.factories import card_saved
from tests.support.slack_harness import *  # noqa: F403
from tests.support.slack_harness import ADMIN, MEMBER, buttons, open_home_tab, response_posts, texts

CHANNEL = "C0ALERTS"


def _open(slack, fake_slack, action, user=ADMIN):
    before = len(fake_slack.of("views.open"))
    slack.click(action, user=user)
    return fake_slack.wait_for("views.open", count=before + 1)[-1].args["view"]


def _charge(context, ids, agent, n, key):
    return transaction(
        context.sessions,
        lambda s: charge(s, ids["account"], ids[agent], "message", n, idempotency_key=key),
    )


def _agent(context, agent_id):
    return transaction(context.sessions, lambda s: s.get(Agent, agent_id))


def _posts(fake_slack):
    return [c.args for c in fake_slack.of("chat.postMessage") if c.args.get("channel") == CHANNEL]


def test_budget_and_alert_levels_are_set_in_one_modal_and_audited(slack, fake_slack, context, ids):
    view = _open(slack, fake_slack, "open_spend_controls")
    assert view["callback_id"] == "spend_controls_modal"
    by_id = {b.get("block_id"): b for b in view["blocks"]}
    assert "initial_value" not in by_id["budget"]["element"], "no budget yet"
    assert by_id["plan_levels"]["element"]["initial_value"] == "20"
    assert by_id["wallet_levels"]["element"]["initial_value"] == "1,000"
    assert by_id["limit_levels"]["element"]["initial_value"] == "80, 100"

    bad = slack.submit(view, {"budget": "2.5", "plan_levels": "0, 20"}).json()
    assert bad["response_action"] == "errors"
    assert "not a budget" in bad["errors"]["budget"]
    assert "not a level" in bad["errors"]["plan_levels"]
    assert (
        transaction(context.sessions, lambda s: budget_view(s, ids["account"])).monthly_budget
        is None
    )

    saved = slack.submit(
        view, {"budget": "2,000", "plan_levels": "50, 20, 5", "wallet_levels": "1,000; 200"}
    ).json()
    assert saved["response_action"] == "update"
    shown = texts(saved["view"]["blocks"])
    assert "a monthly budget of 2,000 credits" in shown
    assert "plan credits at 50, 20, 5 % left; wallet under 1,000; 200 credits" in shown
    account = transaction(context.sessions, lambda s: s.get(Account, ids["account"]))
    assert (account.monthly_budget, account.plan_alert_levels) == (credits(2000), "50,20,5")
    trail = transaction(context.sessions, lambda s: list_events(s, ids["account"], limit=2))
    assert {(e.action, e.actor_kind, e.actor, e.source) for e in trail} == {
        ("budget", "slack_user", ADMIN, "slack"),
        ("alert_levels", "slack_user", ADMIN, "slack"),
    }

    before = len(fake_slack.of("views.open"))
    _, url = slack.click("open_spend_controls", user=MEMBER)
    [refusal] = response_posts(fake_slack, url)
    assert "Only billing admins can change the budget and alert levels" in texts(refusal["blocks"])
    assert len(fake_slack.of("views.open")) == before


def test_a_reached_budget_stops_every_agent_and_says_so_everywhere(slack, fake_slack, context, ids):
    transaction(context.sessions, lambda s: set_alert_channel(s, ids["account"], CHANNEL))
    view = _open(slack, fake_slack, "open_spend_controls")
    slack.submit(view, {"budget": "100", "budget_levels": "50"})
    assert _charge(context, ids, "a", 60, "m1").allowed
    assert _charge(context, ids, "b", 40, "m2").allowed
    assert (_agent(context, ids["a"]).stop_reason, _agent(context, ids["b"]).stop_reason) == (
        "account_budget",
        "account_budget",
    )
    refused = _charge(context, ids, "b", 1, "m3")
    assert (refused.allowed, refused.reason) == (False, "account_budget")

    deliver_due_alerts(context)
    sent = [p["text"] for p in _posts(fake_slack)]
    assert any("used 60% of the account's monthly budget: 60 of 100 credits" in t for t in sent)
    reached = [p for p in _posts(fake_slack) if "reached its monthly budget" in p["text"]]
    assert len(reached) == 1 and "every agent is stopped" in reached[0]["text"]
    assert "Budget and alerts" in buttons(reached[0]["blocks"])

    response, url = slack.command("/balance", user=MEMBER)
    [reply] = response_posts(fake_slack, url)
    seen = texts(reply["blocks"])
    assert "*Monthly budget*\n100 of 100 credits used" in seen
    assert ":octagonal_sign: reached: every agent is stopped" in seen
    assert "*A*: :red_circle: stopped: the account reached its monthly budget" in seen


def test_a_top_up_names_the_stop_agents_it_cannot_serve_and_switches_them(
    slack, fake_slack, context, ids
):
    transaction(context.sessions, lambda s: set_alert_channel(s, ids["account"], CHANNEL))
    transaction(
        context.sessions, lambda s: debit_wallet(s, ids["account"], credits(500), key="empty")
    )
    assert _charge(context, ids, "a", 1000, "m1").allowed  # A (stop) uses the whole plan
    assert _agent(context, ids["a"]).stop_reason == "plan_exhausted"
    response, url = slack.command("/balance", user=ADMIN)
    [reply] = response_posts(fake_slack, url)
    assert "Set to Stop, so still waiting for the renewal or a new month: *A*" in texts(
        reply["blocks"]
    )
    assert "Use balance: A" in buttons(reply["blocks"])

    transaction(
        context.sessions,
        lambda s: record_payment(
            s, ids["account"], amount_minor=2000, currency="USD", payment_intent_id="pi_1"
        ),  # fmt: skip
    )
    deliver_due_alerts(context)
    [topup] = [p for p in _posts(fake_slack) if "Top-up received" in p["text"]]
    assert "still waiting for the renewal or a new month: *A* (plan credits ran out)" in texts(
        topup["blocks"]
    )
    button = buttons(topup["blocks"])["Use balance: A"]
    assert button["value"] == str(ids["a"])

    _, url = slack.click(button["action_id"], button["value"], user=MEMBER)
    [refusal] = response_posts(fake_slack, url)
    assert "Only billing admins" in texts(refusal["blocks"])
    assert _agent(context, ids["a"]).behaviour == "stop"

    _, url = slack.click(button["action_id"], button["value"], user=ADMIN)
    [done] = response_posts(fake_slack, url)
    assert "has resumed" in texts(done["blocks"])
    a = _agent(context, ids["a"])
    assert (a.behaviour, a.status) == ("use_balance", "active")
    [event] = transaction(context.sessions, lambda s: list_events(s, ids["account"], limit=1))
    assert (event.action, event.actor, event.after) == (
        "agent",
        ADMIN,
        {"behaviour": "use_balance"},
    )


def test_use_balance_for_all_switches_every_waiting_agent(slack, fake_slack, context, ids):
    from ledger.agents import add_agent

    c = transaction(context.sessions, lambda s: add_agent(s, ids["account"], "C", behaviour="stop"))
    assert _charge(context, ids, "a", 1000, "m1").allowed
    assert not _charge(context, {**ids, "c": c.id}, "c", 1, "m2").allowed  # C stops too
    assert _agent(context, c.id).stop_reason == "plan_exhausted"
    _, url = slack.click("agents_use_balance_all", "all", user=ADMIN)
    [done] = response_posts(fake_slack, url)
    assert "Switched to Use balance: A, C." in texts(done["blocks"])
    assert {_agent(context, ids["a"]).status, _agent(context, c.id).status} == {"active"}


def test_auto_recharge_to_a_target_shows_what_a_recharge_costs_now(slack, fake_slack, context, ids):
    view = _open(slack, fake_slack, "open_auto_recharge")
    by_id = {b.get("block_id"): b for b in view["blocks"]}
    assert by_id["mode"]["element"]["initial_option"]["value"] == "add"
    assert "A recharge is made only while auto-recharge is on." in texts(view["blocks"])
    card_saved(context.sessions, ids["account"])
    small = slack.submit(view, {"enabled": "on", "threshold": "50", "amount": "20"}).json()
    assert "$20.00 cannot lift an empty wallet back to $50.00" in texts(small["view"]["blocks"])
    # The wallet holds 500 credits ($5.00): a recharge now buys the $45.00 it lacks.
    raised = _open(slack, fake_slack, "open_auto_recharge")
    assert "A recharge now would charge $45.00 (more than the $20.00 set" in texts(raised["blocks"])
    low = slack.submit(
        view, {"enabled": "on", "mode": "target", "threshold": "10", "target": "5"}
    ).json()
    assert "above the threshold ($10.00)" in low["errors"]["target"]
    saved = slack.submit(
        view, {"enabled": "on", "mode": "target", "threshold": "10", "target": "75"}
    ).json()
    assert "what tops it back up to $75.00 is charged to Visa •••• 4242" in texts(
        saved["view"]["blocks"]
    )
    # The wallet holds 500 credits ($5.00): a recharge now buys the $70.00 it lacks.
    again = _open(slack, fake_slack, "open_auto_recharge")
    assert "A recharge now would charge $70.00." in texts(again["blocks"])
    by_id = {b.get("block_id"): b for b in again["blocks"]}
    assert by_id["mode"]["element"]["initial_option"]["value"] == "target"
    assert by_id["target"]["element"]["initial_value"] == "75.00"


def test_the_home_tab_lists_the_latest_changes(slack, fake_slack, context, ids):
    view = _open(slack, fake_slack, "open_spend_controls")
    slack.submit(view, {"budget": "300"})
    published = open_home_tab(slack, fake_slack, user=ADMIN)
    seen = texts(published.args["view"]["blocks"])
    assert "*Latest settings changes*" in seen
    assert f"*budget*: monthly budget none → 300 credits (by <@{ADMIN}>, slack)" in seen
    assert "Budget and alerts" in buttons(published.args["view"]["blocks"])
