"""`creditbot doctor`: each part of creditbot checked, and what to do when it is not right.

One finding per part: the database (reachable, migrated), Slack (the bot token answers
`auth.test`, requests can be verified, no workspace uninstalled the app), Stripe (the key
answers a cheap read, webhooks can be verified), PUBLIC_URL (set, and /healthz answers
there), the scheduler (a leader beats, its jobs run and succeed), the alert outbox
(backlog, oldest undelivered alert) and the secrets kept in the database (webhook signing
secrets and the signed-link key: encrypted, and the keys open them). `creditbot serve` logs the same findings at start-up.

A finding that fails means creditbot cannot do part of its job as configured; a warning
is worth a look. Nothing here changes anything.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.config import DEFAULT_PUBLIC_URL
from bot.context import AppContext
from bot.database import check_database
from ledger.cycles import utcnow
from ledger.db import transaction

OK, WARN, FAIL = "ok", "warn", "fail"
#: A leader whose heartbeat is older than this is taken for dead (it beats every 30 s).
LEADER_STALE = timedelta(seconds=90)
#: Alerts normally leave within seconds; one waiting longer than this is stuck.
ALERT_STUCK = timedelta(minutes=5)
#: How long a network check waits for an answer.
PROBE_TIMEOUT = 5.0


@dataclass(frozen=True)
class Finding:
    part: str
    status: str
    message: str
    hint: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def _ago(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


# -- database -----------------------------------------------------------------------------


def check_db(context: AppContext) -> Finding:
    state = check_database(context.engine)
    if not state.ready:
        return Finding("database", FAIL, state.problem or "", state.hint)
    return Finding("database", OK, f"{state.url} at revision {state.revision} (current)")


# -- Slack --------------------------------------------------------------------------------


def _auth_test(context: AppContext, token: str) -> tuple[dict | None, Finding | None]:
    """Slack's answer to `auth.test` with `token`, or the failing finding."""
    from slack_sdk.errors import SlackApiError

    from bot.slack.clients import make_client

    client = make_client(context.settings, token)
    client.timeout = int(PROBE_TIMEOUT)
    client.retry_handlers = []
    try:
        return dict(client.auth_test().data), None  # type: ignore[arg-type]
    except SlackApiError as exc:
        error = exc.response.get("error") or f"HTTP {exc.response.status_code}"
        return None, Finding(
            "slack", FAIL, f"Slack refused the bot token: {error}",
            "copy the Bot User OAuth Token (xoxb-...) again from the app's Install App page",
        )  # fmt: skip
    except (OSError, urllib.error.URLError) as exc:
        return None, Finding(
            "slack", FAIL,
            f"cannot reach Slack at {context.settings.slack_api_url}:"
            f" {getattr(exc, 'reason', None) or exc}",
            "check the network, and SLACK_API_URL if it was changed",
        )  # fmt: skip


def check_slack_token(context: AppContext) -> Finding:
    from bot.slack.clients import oauth_mode

    settings = context.settings
    if oauth_mode(settings):
        return _check_installs(context)
    if not settings.slack_bot_token:
        return Finding(
            "slack", FAIL, "Slack is not configured: alerts wait in the outbox",
            "set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET"
            " (OAuth installs); see docs/slack.md",
        )  # fmt: skip
    answer, problem = _auth_test(context, settings.slack_bot_token)
    if answer is None:
        assert problem is not None
        return problem
    return Finding(
        "slack", OK,
        f"bot token works in workspace {answer.get('team')} ({answer.get('team_id')})"
        f" as {answer.get('user')}",
    )  # fmt: skip


def _check_installs(context: AppContext) -> Finding:
    from bot.slack.installations import encryption_key_problem, installation_store
    from ledger.models.slack import SlackBot

    problem = encryption_key_problem(context)
    if problem:
        return Finding("slack", FAIL, problem,
                       "set CREDITBOT_ENCRYPTION_KEYS to the key that encrypted them")  # fmt: skip
    teams = transaction(
        context.sessions,
        lambda s: sorted(t for t in s.execute(select(SlackBot.team_id).distinct()).scalars() if t),
    )
    if not teams:
        return Finding(
            "slack", WARN, "OAuth installs are on, but no workspace has installed creditbot",
            f"send people to {context.settings.public_url.rstrip('/')}/slack/install",
        )  # fmt: skip
    store = installation_store(context)
    refused = []
    for team in teams:
        bot = store.find_bot(enterprise_id=None, team_id=team)
        if bot is None or not bot.bot_token:
            continue  # uninstalled: the "slack installs" finding reports it
        answer, problem_found = _auth_test(context, bot.bot_token)
        if answer is None and problem_found is not None:
            refused.append(f"{team} ({problem_found.message})")
    if refused:
        return Finding(
            "slack", FAIL, f"Slack refused the bot token of {', '.join(refused)}",
            "ask that workspace to install creditbot again (/slack/install)",
        )  # fmt: skip
    return Finding("slack", OK, f"{len(teams)} workspace(s) installed; every bot token works")


def check_slack_requests(context: AppContext) -> Finding:
    settings = context.settings
    if settings.slack_app_token:
        return Finding("slack requests", OK, "Socket Mode (SLACK_APP_TOKEN): no signing needed")
    if not settings.slack_signing_secret:
        return Finding(
            "slack requests", FAIL,
            "SLACK_SIGNING_SECRET is not set: /slack/events refuses every request",
            "copy the Signing Secret from the app's Basic Information page",
        )  # fmt: skip
    return Finding("slack requests", OK, "SLACK_SIGNING_SECRET is set")


def check_uninstalls(context: AppContext) -> Finding:
    from bot.slack.clients import oauth_mode, token_digest
    from ledger.models import Account
    from ledger.outbox_status import list_alerts
    from ledger.slack_workspaces import uninstalls

    settings = context.settings
    digest = None if oauth_mode(settings) else token_digest(settings.slack_bot_token)

    def read(session: Session) -> list[str]:
        found = []
        for gone in uninstalls(session):
            if digest is not None and gone.token_digest != digest:
                continue  # another token is configured now: that workspace was reinstalled
            account = session.execute(
                select(Account).where(Account.slack_team_id == gone.team_id)
            ).scalar_one_or_none()
            held = 0
            if account is not None:
                held = len(list_alerts(session, states=("pending", "failed"),
                                       account_id=account.id, limit=10_000))  # fmt: skip
            whose = f" (account {account.name})" if account else ""
            what = "uninstalled the app" if gone.event == "app_uninstalled" else "revoked its token"
            found.append(
                f"workspace {gone.team_id}{whose} {what} on {gone.at:%Y-%m-%d %H:%M} UTC,"
                f" {held} alert(s) held"
            )
        return found

    gone = transaction(context.sessions, read)
    if gone:
        return Finding(
            "slack installs", FAIL, "; ".join(gone),
            "ask them to install creditbot again, or `creditbot accounts unlink --account ...`"
            " if they left",
        )  # fmt: skip
    return Finding("slack installs", OK, "no workspace uninstalled creditbot")


# -- Stripe -------------------------------------------------------------------------------


def check_stripe_key(context: AppContext) -> Finding:
    import stripe

    from bot.stripe.client import client

    settings = context.settings
    if not settings.stripe_secret_key:
        return Finding(
            "stripe", FAIL, "Stripe is not configured: no top-ups, no auto-recharge",
            "set STRIPE_SECRET_KEY (sk_live_... or sk_test_...); see docs/payments.md",
        )  # fmt: skip
    mode = "test" if settings.stripe_secret_key.startswith(("sk_test_", "rk_test_")) else "live"
    try:
        client(context).v1.customers.list(params={"limit": 1}, options={"max_network_retries": 0})
    except stripe.AuthenticationError as exc:
        return Finding(
            "stripe", FAIL, f"Stripe refused STRIPE_SECRET_KEY: {exc.user_message or exc}",
            "copy a secret key again from the Stripe Dashboard (Developers > API keys)",
        )  # fmt: skip
    except stripe.PermissionError as exc:
        return Finding(
            "stripe", FAIL, f"STRIPE_SECRET_KEY may not read customers: {exc.user_message or exc}",
            "give the restricted key the permissions docs/payments.md lists",
        )  # fmt: skip
    except stripe.StripeError as exc:
        return Finding(
            "stripe", FAIL, f"cannot reach Stripe at {settings.stripe_api_base}: {_stripe_words(exc)}",
            "check the network and STRIPE_API_BASE",
        )  # fmt: skip
    return Finding("stripe", OK, f"the {mode}-mode key answers at {settings.stripe_api_base}")


def check_stripe_webhook(context: AppContext) -> Finding:
    if not context.settings.stripe_webhook_secret:
        return Finding(
            "stripe webhook", FAIL,
            "STRIPE_WEBHOOK_SECRET is not set: /stripe/webhook refuses every event, so"
            " payments are credited only by reconciliation",
            "add the endpoint PUBLIC_URL/stripe/webhook in Stripe and copy its signing secret",
        )  # fmt: skip
    return Finding("stripe webhook", OK, "STRIPE_WEBHOOK_SECRET is set")


def _stripe_words(exc: Exception) -> str:
    """The network error inside stripe's long message (or its first line)."""
    text = " ".join(str(exc).split())
    found = re.search(r"\[Errno -?\d+\] [^\"')]+", text)
    return found.group(0).strip() if found else text.split(". ")[0]


# -- PUBLIC_URL ---------------------------------------------------------------------------


def probe_healthz(base: str, *, attempts: int = 1) -> str | None:
    """None when `base`/healthz answers creditbot's ok; otherwise what happened."""
    url = base.rstrip("/") + "/healthz"
    problem = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(0.5)
        try:
            with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as answer:  # noqa: S310
                body = json.loads(answer.read() or b"{}")
            if body.get("status") == "ok":
                return None
            problem = f"{url} answered {body}"
        except urllib.error.HTTPError as exc:
            problem = f"{url} answered HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            problem = f"{url} does not answer: {getattr(exc, 'reason', None) or exc}"
    return problem


def check_public_url(context: AppContext, *, attempts: int = 1) -> Finding:
    settings = context.settings
    if "public_url" not in settings.model_fields_set:
        return Finding(
            "public url", WARN,
            f"PUBLIC_URL is not set: Checkout return pages and fix links point at"
            f" {DEFAULT_PUBLIC_URL}, which only this machine reaches",
            "set PUBLIC_URL to the https address where Slack, Stripe and browsers reach creditbot",
        )  # fmt: skip
    problem = probe_healthz(settings.public_url, attempts=attempts)
    if problem:
        return Finding(
            "public url", FAIL, problem,
            "check that creditbot serve runs and the proxy or tunnel at PUBLIC_URL forwards"
            f" to its port ({settings.port})",
        )  # fmt: skip
    return Finding("public url", OK, f"{settings.public_url} answers /healthz")


# -- scheduler and outbox -----------------------------------------------------------------


def check_scheduler(context: AppContext, now: datetime, *, starting_here: bool) -> Finding:
    from bot.scheduler.leader import LEADER_NAME
    from ledger import job_runs

    leader = transaction(context.sessions, lambda s: job_runs.current_leader(s, LEADER_NAME))
    alive = leader is not None and now - leader.heartbeat_at <= LEADER_STALE
    if alive:
        assert leader is not None
        return Finding("scheduler", OK, f"leader {leader.holder}, last heartbeat"
                       f" {_ago((now - leader.heartbeat_at).total_seconds())} ago")  # fmt: skip
    if starting_here:
        return Finding("scheduler", OK, "starting in this process (RUN_SCHEDULER=true)")
    said = (
        "no scheduler has ever run"
        if leader is None
        else f"the scheduler leader {leader.holder} last beat"
        f" {_ago((now - leader.heartbeat_at).total_seconds())} ago"
    )
    return Finding(
        "scheduler", FAIL, f"{said}: renewals, recharges and alerts wait",
        "run `creditbot serve` with RUN_SCHEDULER=true (the default) or `creditbot scheduler`",
    )  # fmt: skip


def check_jobs(context: AppContext) -> Finding:
    from ledger import job_runs

    statuses = transaction(context.sessions, job_runs.job_statuses)
    failing = [
        f"{job.name} failed {job.consecutive_failures} time(s) in a row:"
        f" {_last_line(job.last_error)}"
        for job in statuses.values()
        if job.consecutive_failures
    ]
    if failing:
        return Finding("jobs", WARN, "; ".join(failing), "`creditbot jobs` shows each error")
    if not statuses:
        return Finding("jobs", OK, "no job has run yet")
    return Finding("jobs", OK, f"{len(statuses)} jobs, none failing")


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no error text"


def check_outbox(context: AppContext, now: datetime) -> Finding:
    from ledger.models import Account, OutboxMessage
    from ledger.outbox_status import Backlog, backlog

    def read(session: Session) -> tuple[Backlog, str, int]:
        found = backlog(session)
        name = ""
        if found.oldest is not None and found.oldest.account_id is not None:
            account = session.get(Account, found.oldest.account_id)
            name = account.name if account else ""
        others = session.execute(
            select(func.count()).where(
                OutboxMessage.delivered_at.is_(None), ~OutboxMessage.kind.startswith("alert.")
            )
        ).scalar_one()
        return found, name, int(others)

    found, name, others = transaction(context.sessions, read)
    extra = f"; {others} other message(s) (recharge requests) waiting" if others else ""
    oldest = found.oldest
    if oldest is None:
        return Finding("outbox", OK, "no alert waiting" + extra)
    age = now - oldest.created_at
    text = (
        f"{found.undelivered} alert(s) undelivered ({found.failed} failed);"
        f" the oldest, {oldest.kind} of {name or 'no account'}, waits since"
        f" {oldest.created_at:%Y-%m-%d %H:%M} UTC ({_ago(age.total_seconds())})"
        + (f", last error: {oldest.last_error}" if oldest.last_error else "")
        + extra
    )
    if age <= ALERT_STUCK:
        return Finding("outbox", OK, text)
    return Finding(
        "outbox", FAIL, text,
        "`creditbot alerts list --status failed` shows why; fix it, then `creditbot alerts retry`",
    )  # fmt: skip


def _check_secrets(context: AppContext) -> Finding:
    from bot.secrets_at_rest import check_secrets

    return check_secrets(context)


# -- all of it ----------------------------------------------------------------------------


def diagnose(
    context: AppContext,
    *,
    now: datetime | None = None,
    starting_here: bool = False,
    probe_attempts: int = 1,
) -> list[Finding]:
    """Every finding, in the order people read them. Parts that need the database are
    left out when it cannot be used (its finding says why)."""
    now = now or utcnow()
    findings = [check_db(context)]
    database_ok = findings[0].status == OK
    checks: list[tuple[str, Callable[[], Finding], bool]] = [
        ("slack", lambda: check_slack_token(context), False),
        ("slack installs", lambda: check_uninstalls(context), True),
        ("slack requests", lambda: check_slack_requests(context), False),
        ("stripe", lambda: check_stripe_key(context), False),
        ("stripe webhook", lambda: check_stripe_webhook(context), False),
        ("public url", lambda: check_public_url(context, attempts=probe_attempts), False),
        ("scheduler", lambda: check_scheduler(context, now, starting_here=starting_here), True),
        ("jobs", lambda: check_jobs(context), True),
        ("outbox", lambda: check_outbox(context, now), True),
        ("secrets", lambda: _check_secrets(context), True),
    ]
    for part, check, needs_database in checks:
        if needs_database and not database_ok:
            continue
        try:
            findings.append(check())
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            findings.append(Finding(part, FAIL, f"could not check: {type(exc).__name__}: {exc}"))
    return findings


def failed(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status == FAIL]
