"""No outside string carries Slack markup into anything the bot posts (issue 10, item 10).

Agent and account names, Stripe's decline texts, card brands, typed amounts, billing admin
ids: in mrkdwn they are escaped (`&`, `<`, `>`), so an agent named `<!channel> <https://
evil.example/pay|...>` pings nobody and links nowhere, yet reads exactly as typed; in
plain-text objects (headers, buttons, options) they are shown as typed, not escaped twice.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.slack import blocks
from bot.slack.blocks.mrkdwn import escape, md, mention
from bot.slack.dashboard_data import Card, Dashboard, RechargeAttempt
from ledger.accounts import AgentView, BalanceView
from ledger.auto_recharge import AutoRecharge
from ledger.forecast import Forecast
from ledger.outbox import ALERT_KINDS
from tests.support.block_kit import (
    as_shown,
    check_message,
    check_view,
    markup_in,
    mrkdwn_texts,
    plain_texts,
    unescaped_in,
)

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
EVIL = "<!channel> <https://evil.example/pay|Acme billing: re-enter card>"

#: Names as people type them: markup characters, entities, mentions, any Unicode.
names = st.one_of(
    st.just(EVIL),
    st.text(st.sampled_from("<>&|!@#*_~`:;amplgt UC01 "), min_size=1, max_size=100),
    st.text(min_size=1, max_size=100),
)


def _dashboard(name: str, agents: int = 3) -> Dashboard:
    view = BalanceView(
        account_id=1, name=name, currency="USD", plan_balance=250_000, plan_grant=1_000_000,
        wallet_balance=1_234_500, wallet_value_minor=1234, cycle_start=date(2026, 11, 1),
        next_renewal_at=datetime(2026, 12, 1, tzinfo=UTC),
        agents=[AgentView(i, name if i == 1 else f"{name}-{i}", "stopped", "monthly_limit", "stop",
                          500_000, 400_000) for i in range(1, agents + 1)],
    )  # fmt: skip
    return Dashboard(
        balance=view, timezone="UTC",
        auto=AutoRecharge(enabled=True, threshold_minor=1000, amount_minor=5000, monthly_cap_minor=50000, paused=False),
        card=Card(name, "4242"),
        last_attempt=RechargeAttempt(NOW, "failed", 5000, "card_declined", name, "https://fix.test"),
        forecast=Forecast(7, 100_000, NOW + timedelta(days=3), NOW + timedelta(days=9), view.next_renewal_at),
        alert_channel="C0ALERTS", billing_admins=["U1", name], topup_min_minor=1000, topup_max_minor=100_000, now=NOW,
    )  # fmt: skip


def _payload(name: str) -> dict:
    return {"agent_id": 7, "agent_name": name, "reason": name, "message": name, "cause": name,
            "previous_reason": name, "fix_url": "https://fix.test/1", "amount_minor": 100,
            "requested_by": name, "recharge_id": 3}  # fmt: skip


def _shows(surface: object, name: str) -> bool:
    """`name` can be read, exactly as typed, in some mrkdwn text of `surface`."""
    return any(name in as_shown(t) for t in mrkdwn_texts(surface))


def _safe(surface: object) -> None:
    assert markup_in(surface) == []
    assert unescaped_in(surface) == []


@settings(max_examples=60, deadline=None)
@given(name=names)
def test_no_name_carries_markup_into_any_builder(name):
    d = _dashboard(name)
    balance = blocks.balance_message(d)
    home = blocks.home_view(d, notice=blocks.alert_channel_notice("C0ALERTS", name))
    modal = blocks.agent_modal(d.balance.agents, d.balance.agents[0])
    error = blocks.error_message(f"'{name}' is not an amount.")
    hello = blocks.alert_channel_hello(name, name)
    surfaces = [
        balance, home, modal, error, hello,
        blocks.auto_recharge_modal(d),
        blocks.topup_offer_message(5000, "USD", 100, d.card, "key"),
        blocks.info_message(blocks.refusal_text(name, ["U0ADMIN", name])),
        blocks.info_message(blocks.agent_saved_text(name, "stop", None, True, "monthly_limit")),
        blocks.info_message(blocks.charge_started_text("$5.00", d.card, {"status": "failed", "message": name})),
        blocks.info_modal(name, name),
        blocks.fix_page_message("setup", "https://checkout.stripe.test/c/1", name),
    ]  # fmt: skip
    surfaces += [
        blocks.alert_message(
            kind,
            _payload(name),
            account_name=name,
            currency="USD",
            timezone="UTC",
            next_renewal_at=NOW,
        )  # fmt: skip
        for kind in ALERT_KINDS
    ]
    for surface in surfaces:
        _safe(surface)
        (check_view if surface.get("type") in ("modal", "home") else check_message)(surface)
    # ... and still reads as typed: escaped once, never twice
    for surface in (balance, home, modal, error, hello):
        assert _shows(surface, name), surface
    stopped = blocks.alert_message("alert.agent_stopped", _payload(name), account_name=name,
                                   currency="USD", timezone="UTC", next_renewal_at=None)  # fmt: skip
    assert _shows(stopped["blocks"][0], name)
    failed = blocks.alert_message("alert.recharge_failed", _payload(name), account_name="Acme",
                                  currency="USD", timezone="UTC", next_renewal_at=None)  # fmt: skip
    assert _shows(failed["blocks"][0], name)  # Stripe's message, as Stripe wrote it
    # plain text is shown as typed: the agent in the select is the name itself
    option = modal["blocks"][0]["element"]["initial_option"]["text"]["text"]
    assert option == (name if len(name) <= 75 else name[:74] + "…")
    assert name[:74] in list(plain_texts(balance["blocks"][0]))[0]  # the header


def test_the_evil_agent_name_pings_nobody_and_links_nowhere():
    surface = blocks.alert_message("alert.agent_stopped", _payload(EVIL), account_name=EVIL,
                                   currency="USD", timezone="UTC", next_renewal_at=None)  # fmt: skip
    texts = list(mrkdwn_texts(surface))
    assert texts and not any("<!channel>" in t or "<https://" in t for t in texts)
    assert (
        "*&lt;!channel&gt; &lt;https://evil.example/pay|Acme billing: re-enter card&gt;* stopped"
        in texts[1]
    )


def test_only_creditbot_writes_markup():
    """Mentions of well-formed ids are markup; anything else in their place is text; safe
    mrkdwn is never escaped twice."""
    assert mention("U0ADMIN") == "<@U0ADMIN>"
    assert mention("<!channel>") == "&lt;!channel&gt;"
    assert mention("U1> <!here") == "U1&gt; &lt;!here"
    said = md("*{}* by {}", "<b> & co", mention("W0ABC"))
    assert said == "*&lt;b&gt; &amp; co* by <@W0ABC>"
    assert escape(said) == said and md("{}", said) == said
    assert said + " <!here>" == "*&lt;b&gt; &amp; co* by <@W0ABC> &lt;!here&gt;"
    assert "<!here> " + said == "&lt;!here&gt; *&lt;b&gt; &amp; co* by <@W0ABC>"
    assert md("{:,} credits", 1234567) == "1,234,567 credits"


@given(st.text(max_size=5000), st.integers(min_value=2, max_value=3000))
def test_cutting_safe_text_never_breaks_an_entity(text, limit):
    from bot.slack.blocks.mrkdwn import shorten

    cut = shorten(md("{} {}", text, mention("U0ADMIN")), limit)
    assert len(cut) <= limit
    assert markup_in({"text": cut}) == [] and unescaped_in({"text": cut}) == []
