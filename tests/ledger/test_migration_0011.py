"""Migration 0011 on a database with data, both ways, on both databases: the budget's month
spend is filled from the agents', today's single thresholds become the first alert levels,
existing keys are runtime keys, and nothing the journal holds is lost or broken."""

from __future__ import annotations

from sqlalchemy import text

from ledger.api_keys import create_key
from ledger.budget import set_budget
from ledger.charges import charge
from ledger.db import make_session_factory, transaction
from ledger.migrate import downgrade, upgrade
from ledger.models import Account, Agent
from ledger.units import credits
from ledger.verify import verify
from tests.support.factories import NOW, story


def _rows(engine, sql):
    with engine.connect() as conn:
        return conn.execute(text(sql)).all()


def test_upgrade_and_downgrade_keep_the_data(engine, sessions):
    ids = story(sessions, plan=1000, wallet=100)

    def use(s):
        charge(s, ids["account"], ids["a"], "message", 30, idempotency_key="a1", now=NOW)
        charge(s, ids["account"], ids["b"], "call_minute", 2, idempotency_key="b1", now=NOW)
        create_key(s, ids["account"], "runtime", scope="admin")
        set_budget(s, ids["account"], credits(50), now=NOW)  # under the spend: both stop

    transaction(sessions, use)
    entries = _rows(engine, "SELECT count(*) FROM entries")[0][0]
    assert {r[0] for r in _rows(engine, "SELECT stop_reason FROM agents")} == {"account_budget"}

    downgrade(engine, "0010")
    assert {r[0] for r in _rows(engine, "SELECT stop_reason FROM agents")} == {"plan_exhausted"}
    with engine.begin() as conn:
        conn.execute(text("UPDATE accounts SET plan_low_percent = 35, wallet_low_credits = 0"))

    upgrade(engine)
    sessions = make_session_factory(engine)

    def read(s):
        account = s.get(Account, ids["account"])
        spent = sum(a.month_spend for a in s.query(Agent).filter_by(account_id=account.id))
        return account, spent, verify(s)

    account, spent, mismatches = transaction(sessions, read)
    assert mismatches == []
    assert (account.plan_alert_levels, account.wallet_alert_levels) == ("35", "")
    assert (account.account_month, account.account_month_spend) == ("2026-11", spent)
    assert spent == credits(30) + credits(20)
    assert account.monthly_budget is None and account.auto_recharge_mode == "add"
    assert [r[0] for r in _rows(engine, "SELECT scope FROM api_keys")] == ["runtime"]
    assert _rows(engine, "SELECT count(*) FROM entries")[0][0] == entries
    assert _rows(engine, "SELECT count(*) FROM audit_events")[0][0] == 0
