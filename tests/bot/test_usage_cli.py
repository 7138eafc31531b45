"""`creditbot usage`: the rollup as a table, JSON (the /v1/usage body) or CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from sqlalchemy import text

from ledger.charges import charge
from ledger.db import make_engine, make_session_factory, transaction
from tests.support.factories import NOW, story


def seed(db_url):
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    ids = story(sessions, plan=10, wallet=100, now=NOW - timedelta(days=5))

    def work(s):
        charge(
            s,
            ids["account"],
            ids["a"],
            "message",
            4,
            idempotency_key="a",
            now=NOW - timedelta(days=2),
        )
        charge(
            s,
            ids["account"],
            ids["b"],
            "call_minute",
            1,
            idempotency_key="b",
            now=NOW - timedelta(days=1),
        )

    transaction(sessions, work)
    engine.dispose()


def test_usage_by_agent_as_json_csv_and_table(run, db_url):
    seed(db_url)
    args = ("usage", "--account", "Acme", "--from", "2026-11-01", "--to", "2026-11-10")
    body = json.loads(run(*args, "--by", "agent", "--format", "json").output)
    assert [
        (r["agent"], r["from_plan_millicredits"], r["from_wallet_millicredits"])
        for r in body["rows"]
    ] == [
        ("A", 4000, 0),
        ("B", 6000, 4000),
    ]
    assert (body["from"], body["to"], body["group_by"]) == ("2026-11-01", "2026-11-10", ["agent"])
    rows = list(
        csv.DictReader(io.StringIO(run(*args, "--by", "day,unit", "--format", "csv").output))
    )
    assert [(r["day"], r["unit"], r["messages"], r["call_minutes"], r["total"]) for r in rows] == [
        ("2026-11-08", "message", "4", "0", "4"),
        ("2026-11-09", "call_minute", "0", "1", "10"),
    ]
    table = run(*args, "--by", "agent").output
    assert "Usage of Acme, 2026-11-01 to 2026-11-10 (UTC)" in table
    assert "│ B " in table and "│ total " in table and "14 │" in table


def test_bad_groups_and_ranges_are_clear_errors(run, db_url):
    seed(db_url)
    out = run("usage", "--account", "Acme", "--by", "week", ok=False)
    assert out.exit_code == 2 and "use agent, day and/or unit" in out.output
    out = run("usage", "--account", "Acme", "--from", "2026-11-10", "--to", "2026-11-01", ok=False)
    assert out.exit_code == 1 and "starts (2026-11-10) after it ends (2026-11-01)" in out.output


def test_ledger_verify_names_a_usage_rollup_row_that_drifted(run, db_url):
    seed(db_url)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE usage_days SET from_plan = from_plan + 1 WHERE unit = 'message'"))
    engine.dispose()
    out = run("ledger", "verify", "--json", ok=False)
    assert out.exit_code == 1
    [problem] = json.loads(out.stdout)["mismatches"]
    assert problem["book"] == "usage_rollup" and problem["day"] == "2026-11-08"
    assert (
        problem["rollup"]["from_plan_millicredits"]
        == problem["journal"]["from_plan_millicredits"] + 1
    )
    plain = run("ledger", "verify", ok=False)
    assert "usage of agent" in plain.output and "in the rollup but" in plain.output
