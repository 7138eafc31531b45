"""An agent, an account, a card and a Stripe decline all named
`<!channel> <https://evil.example/pay|Acme billing: re-enter card>`, through the real
server, on every surface (issue 10, item 10): nothing the fake Slack receives pings
@channel or carries a link in any text Slack reads as mrkdwn, while the name still reads
as typed; in plain-text objects (the agent select, the header) it is the name itself.
"""

from __future__ import annotations

import json

from bot.slack.alerts import deliver_due_alerts
from ledger.accounts import AccountSettings, create_account, set_alert_channel, set_billing_admins
from ledger.agents import add_agent
from ledger.auto_recharge import update_auto_recharge
from ledger.charges import charge
from ledger.db import transaction
from ledger.recharges import recharge_failed, request_recharge
from ledger.stripe_records import save_card
from ledger.topups import record_payment
from ledger.units import credits
from ledger.wallet import credit_wallet
from tests.support.block_kit import as_shown, markup_in, mrkdwn_texts, plain_texts, unescaped_in
from tests.support.slack_harness import *  # noqa: F403
from tests.support.slack_harness import (
    MEMBER,
    TEAM,
    Server,
    Slack,
    buttons,
    open_home_tab,
    response_posts,
)

EVIL = "<!channel> <https://evil.example/pay|Acme billing: re-enter card>"
CHANNEL = "C0ALERTS"


def _hostile_account(context):
    """Everything a user or Stripe names is EVIL: account, agent, card brand, billing admin,
    the decline message of a failed recharge and who paid a top-up."""

    def setup(s):
        account = create_account(
            s, AccountSettings(name=EVIL, slack_team_id=TEAM, plan_credits=credits(1000))
        )
        agent = add_agent(s, account.id, EVIL, behaviour="stop", monthly_limit=credits(100))
        add_agent(s, account.id, "B", behaviour="use_balance")
        credit_wallet(s, account.id, credits(500), key="seed", kind="adjustment")
        set_alert_channel(s, account.id, CHANNEL)
        set_billing_admins(s, account.id, ["UBILLING", EVIL])
        save_card(s, account.id, customer_id="cus_1", payment_method_id="pm_1", brand=EVIL,
                  last4="4242")  # fmt: skip
        update_auto_recharge(s, account.id, enabled=True, threshold_minor=1000, amount_minor=2000)
        job = request_recharge(s, account.id, trigger="sweep").job
        recharge_failed(s, job.recharge_id, reason="card_declined", message=EVIL,
                        fix_link_base="https://creditbot.example/stripe/fix/")  # fmt: skip
        record_payment(s, account.id, amount_minor=1000, currency="USD", payment_intent_id="pi_1",
                       source="saved_card", requested_by=EVIL)  # fmt: skip
        return account.id, agent.id

    return transaction(context.sessions, setup)


def _use(context, account_id, agent_id, amount, key):
    transaction(
        context.sessions,
        lambda s: charge(s, account_id, agent_id, "message", amount, idempotency_key=key),
    )


def test_hostile_names_ping_nobody_and_link_nowhere_on_any_surface(fake_slack, context):
    account_id, agent_id = _hostile_account(context)
    _use(context, account_id, agent_id, 80, "k1")  # 80% of its limit
    _use(context, account_id, agent_id, 20, "k2")  # its limit: stopped
    answers = []  # what creditbot answered over HTTP (modal submissions)
    with Server(context) as server:
        slack = Slack(server.url, fake_slack, context)
        # the failed recharge, the top-up, 80% and 100% of the limit, the agent stopped
        assert deliver_due_alerts(context) == 5
        response_posts(fake_slack, slack.command("/balance", user=MEMBER)[1])
        open_home_tab(slack, fake_slack)
        slack.click("open_agent_settings", str(agent_id))
        view = fake_slack.wait_for("views.open")[-1].args["view"]
        slack.click("agent_select", view={**view, "id": "V0100"}, block_id="agent",
                    extra={"type": "static_select", "selected_option": {"value": str(agent_id)}})  # fmt: skip
        fake_slack.wait_for("views.update")
        submitted = slack.submit(view, {"limit": "1000"})  # raised: the agent resumes
        answers.append(submitted.json())
        assert deliver_due_alerts(context) == 1  # resumed
        _, url = slack.click("agent_use_balance", str(agent_id))
        response_posts(fake_slack, url)
        response_posts(fake_slack, slack.command("/topup", EVIL)[1])  # not an amount
        response_posts(fake_slack, slack.command("/topup", "50", user=MEMBER)[1])  # refused
        offer = response_posts(fake_slack, slack.command("/topup", "50")[1])[0]
        assert "Charge card •••• 4242" in buttons(offer["blocks"])  # the card named EVIL
        slack.click("home_alert_channel", view={"type": "home", "id": "VHOME"}, block_id="alert_channel",
                    extra={"type": "conversations_select", "selected_conversation": "C0NEW"})  # fmt: skip
        fake_slack.wait_for("chat.postMessage", count=7)  # the hello in the new channel
        fake_slack.wait_for("views.publish", count=2)  # the Home tab says where alerts go

    received = [call.args for call in fake_slack.calls] + answers
    said = [text for payload in received for text in mrkdwn_texts(payload)]
    assert len(said) > 40
    assert not [t for t in said if "<!channel>" in t or "<https://evil" in t]
    assert markup_in(received) == []  # no mention, @channel or link but creditbot's own
    assert unescaped_in(received) == []
    # ... and the name still reads as typed where it is shown, in every kind of surface
    for method in ("chat.postMessage", "response_url", "views.publish", "views.open"):
        shown = [as_shown(t) for c in fake_slack.of(method) for t in mrkdwn_texts(c.args)]
        assert any(EVIL in t for t in shown), method
    assert any(EVIL in as_shown(t) for t in mrkdwn_texts(answers))
    # plain text is shown as typed: no entities in the agent select or the header
    assert EVIL in list(plain_texts(view))
    assert "&lt;" not in json.dumps(list(plain_texts(received)))
