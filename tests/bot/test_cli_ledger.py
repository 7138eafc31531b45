"""The `creditbot` command as an operator uses it: accounts, agents, wallet, verify, export."""

from __future__ import annotations

import csv
import io
import re

from sqlalchemy import text

from bot.cli import environment
from ledger.accounts import get_account
from ledger.db import make_engine, transaction
from tests.support.factories import card_saved
from tests.support.hostile_input import NOT_AMOUNTS


def test_every_command_has_help(run):
    for args in (
        [], ["db", "upgrade"], ["serve"], ["accounts", "create"], ["accounts", "show"],
        ["agents", "add"], ["agents", "update"], ["agents", "list"], ["wallet", "adjust"],
        ["ledger", "verify"], ["ledger", "export"],
    ):  # fmt: skip
        out = run(*args, "--help").output
        assert "Usage: creditbot" in out and "--help" in out


def test_an_operator_sets_up_an_account_and_reads_it_back(run):
    out = run(
        "accounts", "create", "--name", "Acme", "--slack-team", "T42", "--plan-credits", "1000",
        "--timezone", "Europe/Madrid", "--cycle-day", "31", "--call-minute-rate", "10",
        "--message-rate", "1", "--per-second", "--credit-price", "100",
    ).output  # fmt: skip
    assert "account 1 (Acme) created" in out
    assert "1,000 left of 1,000" in out
    run(
        "agents",
        "add",
        "--account",
        "Acme",
        "support",
        "--behaviour",
        "use_balance",
        "--limit",
        "500",
    )
    run("wallet", "adjust", "--account", "T42", "--credits", "250", "--reason", "goodwill")
    shown = run("accounts", "show", "Acme").output
    assert "Wallet: 250 credits ($2.50)" in shown
    assert "support" in shown and "use_balance" in shown and "500" in shown
    listed = run("agents", "list", "--account", "1").output
    assert "support" in listed and "active" in listed
    updated = run("agents", "update", "--account", "Acme", "support", "--limit", "none").output
    assert "limit none" in updated


def test_bad_input_gets_a_clear_message_and_changes_nothing(run):
    run("accounts", "create", "--name", "Acme", "--plan-credits", "100")
    for args, message in (
        (["agents", "add", "--account", "Acme", "x", "--limit", "-5"], "not a limit"),
        (["agents", "add", "--account", "Acme", "x", "--limit", "2.5"], "not a limit"),
        (["agents", "update", "--account", "Acme", "ghost", "--limit", "5"], "No agent"),
        (
            ["wallet", "adjust", "--account", "Acme", "--credits", "-10", "--reason", "oops"],
            "holds 0",
        ),
        (
            ["wallet", "adjust", "--account", "Nobody", "--credits", "10", "--reason", "x"],
            "No account",
        ),
        (["accounts", "create", "--name", "B", "--timezone", "Mars/Base"], "not a time zone"),
    ):
        result = run(*args, ok=False)
        assert result.exit_code != 0 and message in result.output, result.output
    assert "Wallet: 0 credits" in run("accounts", "show", "Acme").output


def test_ledger_verify_names_an_account_whose_balance_drifted(run, db_url):
    run("accounts", "create", "--name", "Good", "--plan-credits", "100")
    run("accounts", "create", "--name", "Tampered", "--plan-credits", "100")
    assert "ledger ok" in run("ledger", "verify").output
    engine = make_engine(db_url)
    with engine.begin() as conn:  # someone edits a balance by hand, bypassing the journal
        conn.execute(text("UPDATE accounts SET wallet_balance = 5000 WHERE name = 'Tampered'"))
    engine.dispose()
    result = run("ledger", "verify", ok=False)
    assert result.exit_code == 1
    assert "Tampered" in result.output and "wallet" in result.output and "Good" not in result.output


def test_export_is_a_statement_with_running_balances(run):
    run("accounts", "create", "--name", "Acme", "--plan-credits", "100")
    run("wallet", "adjust", "--account", "Acme", "--credits", "50", "--reason", "welcome")
    run("wallet", "adjust", "--account", "Acme", "--credits", "-20", "--reason", "correction")
    rows = list(csv.DictReader(io.StringIO(run("ledger", "export", "--account", "Acme").output)))
    assert [r["kind"] for r in rows] == ["renewal", "adjustment", "adjustment"]
    assert [r["wallet_balance"] for r in rows] == ["0", "50", "30"]
    assert rows[0]["plan_change"] == "100" and rows[2]["detail"] == "correction"


def test_verify_and_export_show_progress_on_a_terminal_only(run, monkeypatch):
    """On a terminal both draw a bar (on stderr) up to the whole journal; off one, nothing."""
    from rich.console import Console

    import bot.cli.ledger_cmds as ledger_cmds

    run("accounts", "create", "--name", "Acme", "--plan-credits", "100")
    run("wallet", "adjust", "--account", "Acme", "--credits", "50", "--reason", "welcome")
    screens: list[io.StringIO] = []

    def terminal(stderr: bool) -> Console:
        screens.append(io.StringIO())
        return Console(file=screens[-1], force_terminal=True, color_system=None, width=100)

    for args, label in (
        (["ledger", "verify"], "checking transfers"),
        (["ledger", "export", "--account", "Acme"], "writing entries"),
    ):
        plain = run(*args).output
        assert label not in plain
        with monkeypatch.context() as patched:
            patched.setattr(ledger_cmds, "Console", terminal)
            out = run(*args).output
        assert out == plain  # the bar never reaches stdout (an export stays clean CSV)
        drawn = screens[-1].getvalue()
        assert label in drawn
        counts = re.findall(r"(\d+)/(\d+)", drawn)  # the bar's "done/total"
        assert counts and counts[-1][0] == counts[-1][1] != "0", drawn


def _save_a_card(account_ref):
    sessions = environment.context().sessions
    card_saved(sessions, transaction(sessions, lambda s: get_account(s, account_ref).id))


def test_configure_changes_rates_limits_and_auto_recharge(run):
    run("accounts", "create", "--name", "Acme", "--plan-credits", "100")
    _save_a_card("Acme")
    out = run(
        "accounts", "configure", "Acme", "--message-rate", "2", "--per-second", "--topup-min", "5",
        "--auto-recharge", "--recharge-threshold", "20", "--recharge-amount", "50",
    ).output  # fmt: skip
    assert "2 a message" in out and "(per second)" in out
    assert "Top-ups: $5.00 to $1,000.00" in out
    assert "Auto-recharge: on; below $20.00 add $50.00, at most $500.00 a month" in out
    # Bad input is refused clearly and nothing is saved, not even the valid options.
    bad = run(
        "accounts",
        "configure",
        "Acme",
        "--message-rate",
        "3",
        "--recharge-threshold",
        "0",
        ok=False,
    )
    assert bad.exit_code != 0 and "greater than zero" in bad.output
    bad = run("accounts", "configure", "Acme", "--topup-min", "abc", ok=False)
    assert bad.exit_code != 0 and "not an amount" in bad.output
    shown = run("accounts", "show", "Acme").output
    assert "2 a message" in shown and "below $20.00" in shown
    off = run("accounts", "configure", "Acme", "--no-auto-recharge").output
    assert "Auto-recharge: off" in off
    run("accounts", "create", "--name", "Fresh")
    bad = run("accounts", "configure", "Fresh", "--message-rate", "3", "--auto-recharge", ok=False)
    assert bad.exit_code == 1 and "threshold above zero" in bad.output
    assert "1 a message" in run("accounts", "show", "Fresh").output, (
        "the valid rate was not saved either"
    )


def test_turning_auto_recharge_on_without_a_saved_card_says_save_a_card_first(run):
    # Issue 10 item 3: it was accepted silently; every attempt then failed at once.
    run("accounts", "create", "--name", "Acme")
    bad = run(
        "accounts", "configure", "Acme", "--message-rate", "3", "--auto-recharge",
        "--recharge-threshold", "20", "--recharge-amount", "50", ok=False,
    )  # fmt: skip
    assert bad.exit_code == 1
    assert "Save a card first" in bad.output
    assert "creditbot stripe add-card --account 1" in bad.output
    shown = run("accounts", "show", "Acme").output
    assert "Auto-recharge: off" in shown and "1 a message" in shown, "nothing was saved"
    _save_a_card("Acme")
    on = run(
        "accounts", "configure", "Acme", "--auto-recharge",
        "--recharge-threshold", "20", "--recharge-amount", "50",
    ).output  # fmt: skip
    assert "Auto-recharge: on; below $20.00 add $50.00" in on


def test_hostile_amounts_on_the_command_line_get_a_clear_error(run):
    # Issue 10 item 13: 'Infinity' as credits ended in an OverflowError traceback.
    run("accounts", "create", "--name", "Acme")
    run("agents", "add", "--account", "Acme", "support")
    for typed in NOT_AMOUNTS:
        for args in (
            ["accounts", "create", "--name", "X", "--plan-credits", typed],
            ["accounts", "configure", "Acme", "--message-rate", typed],
            ["accounts", "configure", "Acme", "--recharge-threshold", typed],
            ["accounts", "configure", "Acme", "--topup-max", typed],
            ["wallet", "adjust", "--account", "Acme", "--credits", typed, "--reason", "x"],
            ["agents", "update", "--account", "Acme", "support", "--limit", typed],
        ):
            refused = run(*args, ok=False)
            assert refused.exit_code in (1, 2), (args, refused.output)
            assert "Error" in refused.output and "Traceback" not in refused.output, args
    shown = run("accounts", "show", "Acme").output
    assert "Wallet: 0 credits" in shown and "1 a message" in shown
    assert "No account 'X'" in run("accounts", "show", "X", ok=False).output  # not created


def test_currencies_take_their_own_minor_units_and_default_range(run):
    out = run("accounts", "create", "--name", "Saigon", "--currency", "VND").output
    assert "Top-ups: ₫200,000 to ₫20,000,000" in out  # not "10.00 VND"
    out = run("accounts", "configure", "Saigon", "--topup-min", "250,000").output
    assert "Top-ups: ₫250,000 to ₫20,000,000" in out  # zero-decimal: not 25,000,000
    bad = run("accounts", "create", "--name", "Nowhere", "--currency", "ZZZ", ok=False)
    assert bad.exit_code == 1 and "'ZZZ' is not a currency code" in bad.output
