"""`creditbot recharges run`, `creditbot stripe sweep` and `creditbot jobs` as an admin uses
them after a recharge went wrong (issue 10 items 0 and 3), against localstripe on both
databases: a manual run does not wait after a failure, a capped account never ends a
command in a traceback or holds up the others, and a sweep whose attempts all failed is
listed as an error with its reason."""

from __future__ import annotations

import json

import pytest

from bot.cli import environment
from bot.config import get_settings
from ledger.accounts import get_account
from ledger.db import transaction
from tests.support.factories import auto_recharge_without_card
from tests.support.payments_support import (  # noqa: F401  (fixtures)
    SECRET_KEY,
    WEBHOOK_SECRET,
    localstripe_url,
    saved_card,
)

DECLINED = "4000000000000002"


@pytest.fixture
def admin(run, monkeypatch, localstripe_url):  # noqa: F811
    """`creditbot` against the test's database and localstripe."""
    monkeypatch.setenv("STRIPE_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("STRIPE_API_BASE", localstripe_url)
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: only long results wrap
    get_settings.cache_clear()
    environment.context.cache_clear()
    return run


def _account(name: str, admin, localstripe: str, card: str, **recharge: str) -> int:
    """An account with an empty wallet and `card` saved as Stripe's card page saves it,
    then auto-recharge turned on through the CLI (it needs the card first)."""
    admin("accounts", "create", "--name", name)
    context = environment.context()
    account_id = transaction(context.sessions, lambda s: get_account(s, name).id)
    saved_card(context, localstripe, account_id, card)
    settings = {"threshold": "20", "amount": "50", **recharge}
    options = [f"--recharge-{key}={value}" for key, value in settings.items()]
    admin("accounts", "configure", name, "--auto-recharge", *options)
    return account_id


def _attempts(admin, name: str) -> list[tuple[str, str | None]]:
    rows = admin("recharges", "list", "--account", name, "--json").stdout
    return [(r["status"], r["reason"]) for r in json.loads(rows)]


def _rows(table: str) -> dict[str, list[str]]:
    """The cells of `creditbot jobs`' table by job, a cell wrapped over lines joined."""
    rows: dict[str, list[str]] = {}
    last: list[str] = []
    for line in table.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if cells[0]:
            last = rows[cells[0]] = cells
        else:  # the rest of the row above
            last[:] = [" ".join(filter(None, pair)) for pair in zip(last, cells, strict=True)]
    return rows


def test_an_admin_who_fixed_the_card_starts_a_recharge_at_once(admin, localstripe_url):  # noqa: F811
    acme = _account("Acme", admin, localstripe_url, DECLINED)

    declined = admin("recharges", "run", "--account", "Acme", ok=False)
    assert declined.exit_code == 1 and "recharge: failed" in declined.output
    assert _attempts(admin, "Acme") == [("failed", "card_declined")]

    saved_card(environment.context(), localstripe_url, acme)  # the admin saves a good card
    # Automatic triggers still wait after the failure: the sweep makes no Stripe call.
    swept = admin("stripe", "sweep")
    assert "sweep calls to Stripe: 0" in swept.output
    assert _attempts(admin, "Acme") == [("failed", "card_declined")]

    fixed = admin("recharges", "run", "--account", "Acme")
    assert fixed.output.strip() == "recharge: succeeded", "the admin was told to wait"
    assert _attempts(admin, "Acme") == [("succeeded", None), ("failed", "card_declined")]
    assert "Wallet: 5,000 credits ($50.00)" in admin("accounts", "show", "Acme").output


def test_an_account_at_its_monthly_cap_ends_no_command_in_a_traceback(admin, localstripe_url):  # noqa: F811
    # Each recharge is raised to what lifts the wallet to $500, cut to the $20 cap: one
    # recharge fills the month's cap and the wallet stays under the threshold.
    _account("Capped", admin, localstripe_url, "4242424242424242",
             threshold="500", amount="20", cap="20")  # fmt: skip
    assert admin("recharges", "run", "--account", "Capped").output.strip() == (
        "recharge: succeeded"
    )
    # Asked again, twice: the cap alert is written once and each run says why, exit 0
    # (the `admin` fixture lets any exception through: a traceback fails the test).
    for _ in range(2):
        capped = admin("recharges", "run", "--account", "Capped")
        assert capped.output.strip() == "recharge: skipped: the monthly cap would be exceeded"
    _account("Later", admin, localstripe_url, "4242424242424242")

    swept = admin("stripe", "sweep")  # asks the capped account a third time, then the other

    assert "sweep calls to Stripe: 1" in swept.output and "failed" not in swept.output
    assert _attempts(admin, "Later") == [("succeeded", None)]
    assert _attempts(admin, "Capped") == [("succeeded", None)]
    job = admin("jobs", "run", "auto_recharge_sweep")
    assert "auto_recharge_sweep: ok" in job.output


def test_jobs_lists_a_sweep_whose_attempts_all_failed_as_an_error_with_the_reason(
    admin,
    localstripe_url,  # noqa: F811
):
    declined = _account("Declined", admin, localstripe_url, DECLINED)
    admin("accounts", "create", "--name", "No card")
    sessions = environment.context().sessions
    no_card = transaction(sessions, lambda s: get_account(s, "No card").id)
    auto_recharge_without_card(sessions, no_card)  # turned on before a card was required

    job = admin("jobs", "run", "auto_recharge_sweep", ok=False)

    assert job.exit_code == 1 and "auto_recharge_sweep: error" in job.output
    reasons = [f"account {declined}: card_declined", f"account {no_card}: missing_payment_method"]
    result = _rows(admin("jobs").output)["auto_recharge_sweep"][4]
    assert result.startswith("error ") and "ok" not in result.split()
    assert all(reason in result for reason in reasons), result
    listed = json.loads(admin("jobs", "--json").stdout)
    [sweep] = [j for j in listed["jobs"] if j["name"] == "auto_recharge_sweep"]
    assert sweep["last_status"] == "error"
    assert all(reason in sweep["last_error"] for reason in reasons)
    assert sweep["last_result"] == "2 recharge(s) started"
