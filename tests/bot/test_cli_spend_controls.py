"""Spend controls from the command line: the budget, recharge to a target, alert levels,
admin-scoped keys and the audit trail, each change named after the operator who made it."""

from __future__ import annotations

import getpass

import pytest

from ledger.db import make_engine, make_session_factory
from tests.support.cli import creditbot  # noqa: F401  (fixture)
from tests.support.factories import card_saved


@pytest.fixture
def cli(creditbot, sqlite_url):  # noqa: F811
    creditbot.env(DATABASE_URL=sqlite_url)
    creditbot("accounts", "create", "--name", "Acme", "--plan-credits", "100")
    creditbot("agents", "add", "--account", "Acme", "support-bot")
    return creditbot


def test_the_budget_is_set_shown_and_removed(cli):
    out = cli("accounts", "budget", "Acme", "5,000").output
    assert "Monthly budget 5,000 credits" in out and "left 5,000" in out
    assert cli.json("accounts", "budget", "Acme")["monthly_budget_millicredits"] == 5_000_000
    assert (
        "Monthly budget: 5,000 credits, all agents together"
        in cli("accounts", "show", "Acme").output
    )
    bad = cli("accounts", "budget", "Acme", "2.5", code=2)
    assert "not a budget" in bad.output
    assert "No monthly budget" in cli("accounts", "budget", "Acme", "none").output


def test_recharge_to_a_target(cli, sqlite_url):
    engine = make_engine(sqlite_url)
    card_saved(make_session_factory(engine), 1)  # what Stripe's card page records
    engine.dispose()
    out = cli(
        "accounts", "configure", "Acme", "--auto-recharge", "--recharge-threshold", "50",
        "--recharge-mode", "target", "--recharge-target", "200",
    ).output  # fmt: skip
    assert "Auto-recharge: on; below $50.00 top up to $200.00, at most $500.00 a month" in out
    shown = cli.json("accounts", "show", "Acme")["auto_recharge"]
    assert (shown["mode"], shown["target_minor"]) == ("target", 20_000)


def test_alert_levels_are_set_per_kind_and_checked(cli):
    out = cli(
        "accounts", "alert-levels", "Acme", "--plan", "50,20,5", "--wallet", "1,000; 200",
        "--budget", "50, 80",
    ).output  # fmt: skip
    assert "plan credits at 50%, 20%, 5% left; wallet under 1,000, 200 credits" in out
    assert "agent limits at 80%, 100%; budget at 50%, 80%" in out
    assert cli.json("accounts", "alert-levels", "Acme")["wallet_millicredits"] == [
        1_000_000,
        200_000,
    ]
    bad = cli("accounts", "alert-levels", "Acme", "--plan", "0", code=2)
    assert "not a level" in bad.output
    assert "plan credits at none" in cli("accounts", "alert-levels", "Acme", "--plan", "").output


def test_admin_keys_and_the_audit_trail_name_the_operator(cli):
    made = cli("api-keys", "create", "--account", "Acme", "--name", "platform", "--scope", "admin")
    assert "scope admin" in made.stderr
    keys = cli.json("api-keys", "list", "--account", "Acme")
    assert [k["scope"] for k in keys] == ["admin"]
    cli("accounts", "budget", "Acme", "800")
    cli("agents", "update", "--account", "Acme", "support-bot", "--limit", "300")
    trail = cli.json("audit", "--account", "Acme")
    assert [e["action"] for e in trail[:3]] == ["agent", "budget", "api_key.created"]
    me = getpass.getuser()
    assert {(e["actor_kind"], e["actor"], e["source"]) for e in trail[:3]} == {
        ("cli_operator", me, "cli")
    }
    assert trail[1]["before"] == {"monthly_budget": None}
    assert trail[1]["after"] == {"monthly_budget": 800_000}
    table = cli("audit", "--account", "Acme").output
    assert "budget" in table and "monthly_budget=800000" in table and me in table
