"""Scripts read creditbot through `--json` on every read command, with full values; people
read tables with nothing cut short and dates in the account's own time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ledger.accounts import AccountSettings, create_account
from ledger.agents import add_agent
from ledger.api_keys import create_key
from ledger.charges import charge
from ledger.db import make_engine, make_session_factory, transaction
from ledger.recharges import request_recharge
from ledger.topups import record_payment
from ledger.units import credits
from tests.support.factories import turn_on_without_card

# Local midnight in Madrid is 23:00 UTC the day before: a renewal read in UTC shows the
# wrong day.
NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
FIX_BASE = "https://billing.creditbot.example.com/stripe/fix/" + "a-long-path-segment/" * 6


@pytest.fixture
def acme(sqlite_url, creditbot):
    """Acme in Europe/Madrid, renewing on the 1st: an agent, a top-up, a failed recharge
    with its fix link, an API key, and the alerts a charge wrote."""
    engine = make_engine(sqlite_url)
    sessions = make_session_factory(engine)

    def work(s):
        account = create_account(
            s,
            AccountSettings(name="Acme", slack_team_id="T1", timezone="Europe/Madrid",
                            plan_credits=credits(100), cycle_anchor_day=1),
            now=NOW,
        )  # fmt: skip
        agent = add_agent(s, account.id, "support-bot", behaviour="stop", monthly_limit=credits(50),
                          now=NOW)  # fmt: skip
        record_payment(s, account.id, amount_minor=2500, currency="USD",
                       payment_intent_id="pi_123", now=NOW)  # fmt: skip
        charge(s, account.id, agent.id, "message", 40, idempotency_key="m1", now=NOW)
        # on with no card (as before a card was required): its attempt fails, with a fix link
        turn_on_without_card(s, account.id, threshold_minor=5000, amount_minor=2000)
        request_recharge(s, account.id, trigger="sweep", fix_link_base=FIX_BASE, now=NOW)
        create_key(s, account.id, "voice-runtime")
        return account.id

    account_id = transaction(sessions, work)
    engine.dispose()
    creditbot.env(DATABASE_URL=sqlite_url)
    return account_id


def test_accounts_show_and_list_in_json_and_with_the_local_renewal_day(creditbot, acme):
    shown = creditbot.json("accounts", "show", "Acme")
    assert shown["next_renewal_at"] == "2026-11-30T23:00:00+00:00"
    assert shown["next_renewal_date"] == "2026-12-01"  # the account's day, not UTC's
    assert shown["wallet_balance_millicredits"] == credits(2500)
    assert shown["plan_balance_millicredits"] == credits(60)
    assert shown["auto_recharge"] == {"state": "on", "threshold_minor": 5000,
                                      "amount_minor": 2000, "monthly_cap_minor": 50000,
                                      "mode": "add", "target_minor": 0}  # fmt: skip
    assert shown["agents"] == [{
        "id": 1, "name": "support-bot", "status": "active", "stop_reason": None, "behaviour": "stop",
        "monthly_limit_millicredits": credits(50), "month_spend_millicredits": credits(40),
    }]  # fmt: skip
    listed = creditbot.json("accounts", "list")
    assert [a["id"] for a in listed] == [acme] and listed[0]["name"] == "Acme"

    table = creditbot("accounts", "list").output
    assert "Tue 01 Dec 2026 (Europe/Madrid)" in table and "30 Nov" not in table
    assert (
        "Next cycle renewal: Tue 01 Dec 2026 (Europe/Madrid)"
        in creditbot("accounts", "show", "Acme").output
    )


def test_agents_list_json(creditbot, acme):
    [agent] = creditbot.json("agents", "list", "--account", "Acme")
    assert agent["name"] == "support-bot" and agent["month_spend_millicredits"] == credits(40)


def test_recharges_list_keeps_the_fix_link_whole(creditbot, acme):
    [attempt] = creditbot.json("recharges", "list", "--account", "Acme")
    assert attempt["status"] == "failed" and attempt["reason"] == "missing_payment_method"
    assert attempt["fix_url"].startswith(FIX_BASE) and len(attempt["fix_url"]) > 160
    out = creditbot("recharges", "list", "--account", "Acme").output
    assert "…" not in out
    assert f"fix recharge {attempt['id']}: {attempt['fix_url']}\n" in out  # one line, whole


def test_topups_and_api_keys_json(creditbot, acme):
    [topup] = creditbot.json("topups", "list", "--account", "Acme")
    assert topup["amount_minor"] == 2500 and topup["credited_millicredits"] == credits(2500)
    assert topup["payment_intent_id"] == "pi_123"
    # Times in the account's zone in the table (12:00 UTC is 13:00 in Madrid in November).
    assert "2026-11-10 13:00 CET" in creditbot("topups", "list", "--account", "Acme").output
    [key] = creditbot.json("api-keys", "list", "--account", "Acme")
    assert key["name"] == "voice-runtime" and key["active"] is True
    assert key["prefix"].startswith("cb_") and "secret" not in key


def test_ledger_verify_json_names_each_mismatch(creditbot, acme, sqlite_url):
    assert creditbot.json("ledger", "verify") == {"ok": True, "mismatches": []}
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE accounts SET wallet_balance = wallet_balance + 1")
    engine.dispose()
    found = creditbot.json("ledger", "verify", code=1)
    assert found["ok"] is False
    assert found["mismatches"] == [{"account_id": acme, "account_name": "Acme", "book": "wallet",
                                    "cached_millicredits": credits(2500) + 1,
                                    "posted_millicredits": credits(2500)}]  # fmt: skip


def test_jobs_json_has_every_job_and_its_whole_error(creditbot, acme, monkeypatch):
    from bot import stripe as stripe_gateway

    long_error = "card network unreachable " + "x" * 300

    def broken(context):
        raise RuntimeError(long_error)

    monkeypatch.setattr(stripe_gateway, "reconcile_payments", broken)
    creditbot("jobs", "run", "stripe_reconcile", code=1)
    shown = creditbot.json("jobs")
    by_name = {j["name"]: j for j in shown["jobs"]}
    assert "renewals" in by_name and by_name["renewals"]["last_status"] is None
    assert by_name["stripe_reconcile"]["last_status"] == "error"
    assert long_error in by_name["stripe_reconcile"]["last_error"]  # not cut at 120
    [run] = creditbot.json("jobs", "history")
    assert run["job"] == "stripe_reconcile" and long_error in run["error"]


def test_every_read_command_takes_json(creditbot):
    for args in (
        ["accounts", "show"], ["accounts", "list"], ["agents", "list"], ["recharges", "list"],
        ["topups", "list"], ["jobs"], ["jobs", "history"], ["ledger", "verify"],
        ["api-keys", "list"], ["alerts", "list"], ["doctor"],
    ):  # fmt: skip
        assert "--json" in creditbot(*args, "--help").output, args
