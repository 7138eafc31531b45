"""`creditbot doctor` on a misconfigured instance names each problem and what to do, and
exits 1; on a well-configured one every check is fine and it exits 0. `creditbot serve`
logs the same findings once it answers."""

from __future__ import annotations

from datetime import timedelta

from bot.context import build_context
from bot.scheduler.leader import LEADER_NAME
from bot.slack.clients import token_digest
from ledger import job_runs, outbox
from ledger.charges import charge
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.slack_workspaces import record_uninstall
from tests.support.api_server import Server as ServeProcess
from tests.support.api_server import free_port
from tests.support.factories import story
from tests.support.payments_support import SECRET_KEY, localstripe_url  # noqa: F401
from tests.support.slack_harness import *  # noqa: F403
from tests.support.slack_harness import Server, settings_for
from tests.support.waiting import wait_until


def _findings(creditbot, code):
    answer = creditbot.json("doctor", code=code)
    assert answer["ok"] is (code == 0)
    return {f["part"]: f for f in answer["findings"]}


def test_each_problem_of_a_misconfigured_instance(
    creditbot,
    sqlite_url,
    fake_slack,
    localstripe_url,  # noqa: F811
):
    now = utcnow()
    ctx = build_context(settings_for(sqlite_url, fake_slack))
    ids = story(ctx.sessions, now=now - timedelta(hours=3))

    def history(s):
        # Alerts written two hours ago, the first failed since; a leader that stopped
        # beating ten minutes ago; a job failing; the workspace uninstalled the app.
        charge(s, ids["account"], ids["a"], "message", 1000, idempotency_key="k",
               now=now - timedelta(hours=2))  # fmt: skip
        first = outbox.pending(s)[0]
        outbox.mark_failed(s, first.id, "slack 500: internal_error", now=now)
        job_runs.note_leader(s, LEADER_NAME, "host:42", now=now - timedelta(minutes=10),
                             acquired=True)  # fmt: skip
        job_runs.record_run(s, job_runs.RunOutcome(
            "alert_delivery", now, now, ok=False, error="Traceback...\nRuntimeError: boom"))  # fmt: skip
        record_uninstall(s, "T0001", "app_uninstalled", token_digest=token_digest("xoxb-dead"),
                         now=now - timedelta(minutes=30))  # fmt: skip

    transaction(ctx.sessions, history)
    ctx.engine.dispose()
    fake_slack.revoked_tokens.add("xoxb-dead")
    closed = free_port()
    creditbot.env(
        DATABASE_URL=sqlite_url, SLACK_BOT_TOKEN="xoxb-dead", SLACK_API_URL=fake_slack.api_url,
        SLACK_SIGNING_SECRET="", STRIPE_SECRET_KEY="not-a-key", STRIPE_API_BASE=localstripe_url,
        STRIPE_WEBHOOK_SECRET="", PUBLIC_URL=f"http://127.0.0.1:{closed}",
    )  # fmt: skip
    found = _findings(creditbot, 1)

    assert found["database"]["status"] == "ok" and "(current)" in found["database"]["message"]
    assert found["slack"] == {
        "part": "slack", "status": "fail", "message": "Slack refused the bot token: token_revoked",
        "hint": "copy the Bot User OAuth Token (xoxb-...) again from the app's Install App page",
    }  # fmt: skip
    installs = found["slack installs"]
    assert installs["status"] == "fail"
    assert installs["message"].startswith("workspace T0001 (account Acme) uninstalled the app on")
    assert installs["message"].endswith("3 alert(s) held")
    assert found["slack requests"]["status"] == "fail"
    assert "SLACK_SIGNING_SECRET is not set" in found["slack requests"]["message"]
    assert found["stripe"]["status"] == "fail"
    assert found["stripe"]["message"].startswith("Stripe refused STRIPE_SECRET_KEY")
    assert found["stripe webhook"]["status"] == "fail"
    assert "STRIPE_WEBHOOK_SECRET is not set" in found["stripe webhook"]["message"]
    assert found["public url"]["status"] == "fail"
    assert found["public url"]["message"].startswith(
        f"http://127.0.0.1:{closed}/healthz does not answer"
    )
    assert found["scheduler"]["status"] == "fail"
    assert found["scheduler"]["message"].startswith(
        "the scheduler leader host:42 last beat 10m ago"
    )
    assert "creditbot scheduler" in found["scheduler"]["hint"]
    assert found["jobs"] == {
        "part": "jobs", "status": "warn",
        "message": "alert_delivery failed 1 time(s) in a row: RuntimeError: boom",
        "hint": "`creditbot jobs` shows each error",
    }  # fmt: skip
    stuck = found["outbox"]
    assert stuck["status"] == "fail"
    assert stuck["message"].startswith(
        "3 alert(s) undelivered (1 failed); the oldest, alert.plan_low of Acme, waits since"
    )
    assert "(2h), last error: slack 500: internal_error" in stuck["message"]
    assert "creditbot alerts retry" in stuck["hint"]

    table = creditbot("doctor", code=1).output
    assert "✘  slack" in table and "→ copy the Bot User OAuth Token" in table
    assert "8 problem(s), 1 warning(s)" in table


def test_a_fresh_instance_is_told_what_is_not_configured_yet(creditbot, sqlite_url):
    creditbot.env(DATABASE_URL=sqlite_url, SLACK_BOT_TOKEN="", SLACK_SIGNING_SECRET="",
                  STRIPE_SECRET_KEY="", STRIPE_WEBHOOK_SECRET="", PUBLIC_URL=None)  # fmt: skip
    found = _findings(creditbot, 1)
    assert found["slack"]["message"] == "Slack is not configured: alerts wait in the outbox"
    assert found["stripe"]["message"] == "Stripe is not configured: no top-ups, no auto-recharge"
    assert found["public url"]["status"] == "warn"
    assert found["public url"]["message"].startswith("PUBLIC_URL is not set")
    assert found["scheduler"]["message"].startswith("no scheduler has ever run")
    assert found["outbox"] == {"part": "outbox", "status": "ok", "message": "no alert waiting",
                               "hint": None}  # fmt: skip


def test_an_unmigrated_database_is_the_first_finding(creditbot, tmp_path):
    creditbot.env(DATABASE_URL=f"sqlite:///{tmp_path / 'none.db'}")
    found = _findings(creditbot, 1)
    assert found["database"]["status"] == "fail"
    assert found["database"]["hint"] == "run `creditbot db upgrade` to create it"
    assert not {"scheduler", "jobs", "outbox", "slack installs"} & set(found)
    assert not (tmp_path / "none.db").exists()


def test_a_well_configured_instance_passes(
    creditbot,
    sqlite_url,
    fake_slack,
    localstripe_url,  # noqa: F811
):
    ctx = build_context(settings_for(sqlite_url, fake_slack))
    story(ctx.sessions, now=utcnow())
    transaction(ctx.sessions, lambda s: job_runs.note_leader(s, LEADER_NAME, "host:1",
                                                             now=utcnow(), acquired=True))  # fmt: skip
    with Server(ctx) as server:
        creditbot.env(
            DATABASE_URL=sqlite_url, SLACK_BOT_TOKEN="xoxb-test", SLACK_API_URL=fake_slack.api_url,
            SLACK_SIGNING_SECRET="s3cret", STRIPE_SECRET_KEY=SECRET_KEY,
            STRIPE_API_BASE=localstripe_url, STRIPE_WEBHOOK_SECRET="whsec_1", PUBLIC_URL=server.url,
        )  # fmt: skip
        found = _findings(creditbot, 0)
        assert creditbot("doctor").output.strip().endswith("everything checked is fine")
    ctx.engine.dispose()
    assert {f["status"] for f in found.values()} == {"ok"}
    assert found["slack"]["message"] == "bot token works in workspace Acme (T0001) as creditbot"
    assert found["stripe"]["message"] == f"the test-mode key answers at {localstripe_url}"
    assert found["public url"]["message"] == f"{server.url} answers /healthz"
    assert found["scheduler"]["message"].startswith("leader host:1, last heartbeat")


def test_serve_logs_the_findings_once_it_answers(sqlite_url, monkeypatch):
    for key in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "STRIPE_SECRET_KEY", "PUBLIC_URL"):
        monkeypatch.delenv(key, raising=False)
    # The lines a person reads on a terminal (off a terminal they are JSON objects).
    monkeypatch.setenv("LOG_FORMAT", "text")
    with ServeProcess(sqlite_url) as served:
        log = wait_until(lambda: "doctor:" in served.log.read_text() and served.log.read_text())
    assert "ERROR:     creditbot doctor FAIL slack: Slack is not configured" in log
    assert "ERROR:     creditbot doctor FAIL stripe: Stripe is not configured" in log
    assert "INFO:     creditbot doctor ok   database: sqlite:///" in log
    assert "problem(s): slack, slack requests, stripe, stripe webhook, scheduler" in log
