"""`creditbot serve` logs at start-up what `creditbot doctor` finds, so a server started
without Slack, Stripe or a scheduler says so in its first lines. The checks run in a
thread once the server answers /healthz (the PUBLIC_URL check may then reach this very
server), and never hold up serving."""

from __future__ import annotations

import logging
import threading

from bot.context import AppContext
from bot.doctor import FAIL, OK, WARN, Finding, diagnose, failed, probe_healthz

log = logging.getLogger("creditbot.doctor")
LEVELS = {OK: logging.INFO, WARN: logging.WARNING, FAIL: logging.ERROR}
MARKS = {OK: "ok  ", WARN: "warn", FAIL: "FAIL"}
#: How long to wait for this server's first answer before checking anyway.
WAIT_ATTEMPTS = 60


def _visible() -> None:
    """uvicorn configures only its own loggers: give this one a handler like theirs
    (unless creditbot's logs are JSON lines, bot/logs.py, which carry it already)."""
    from bot.logs import json_configured

    if not log.handlers and not json_configured():
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     creditbot %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def log_findings(findings: list[Finding]) -> None:
    _visible()
    for f in findings:
        hint = f" -> {f.hint}" if f.hint else ""
        log.log(LEVELS[f.status], "doctor %s %s: %s%s", MARKS[f.status], f.part, f.message, hint)
    problems = failed(findings)
    if problems:
        log.error(
            "doctor: %d problem(s): %s (`creditbot doctor` checks again)",
            len(problems),
            ", ".join(f.part for f in problems),
        )
    else:
        log.info("doctor: everything checked is fine")


def report_when_serving(context: AppContext, local_url: str) -> threading.Thread:
    """Check every part once `local_url` answers, and log the findings."""

    def work() -> None:
        probe_healthz(local_url, attempts=WAIT_ATTEMPTS)
        try:
            findings = diagnose(
                context, starting_here=context.settings.run_scheduler, probe_attempts=3
            )
        except Exception:  # noqa: BLE001 - a report never takes the server down
            log.exception("doctor: the start-up checks failed")
            return
        log_findings(findings)

    thread = threading.Thread(target=work, name="creditbot-startup-report", daemon=True)
    thread.start()
    return thread
