"""creditbot in one process, as the simulation drives it.

A migrated SQLite file, the app's context, the fakes of Stripe and Slack wired in through
the product's seams (`bot.stripe.client.http_client`, `bot.slack.clients.client_class`,
`bot.outbound.webhooks.opener` for the webhook receivers),
the scheduler's runner (`bot.scheduler.runner.Scheduler.run_now`, which records each run as
`creditbot jobs` shows it) and the real `/stripe/webhook` route for Stripe's deliveries.

`restart()` is what follows a crash: everything held in memory is dropped (engine, sessions,
scheduler, the webhook server) and rebuilt from the database, as a new process would.
The simulation reads the database through a connection of its own (`sim.observe.Reader`).
"""

from __future__ import annotations

import logging
import shutil
import warnings
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

from fastapi import FastAPI

import bot.outbound.webhooks
import bot.slack.clients
import bot.stripe.client
from bot.config import Settings
from bot.context import AppContext
from bot.http import stripe_routes
from bot.scheduler.jobs import JOBS
from bot.scheduler.leader import SoloLeader
from bot.scheduler.runner import Scheduler
from ledger import job_runs
from ledger.db import make_engine
from ledger.migrate import upgrade
from sim.clock import SimClock
from sim.crash import CrashPoints
from sim.fake_receivers import FakeReceivers, sim_opener
from sim.fake_slack import API_URL, BOT_TOKEN, FakeSlack, sim_web_client
from sim.fake_stripe import FakeStripe
from sim.observe import Reader
from sim.stripe_events import WEBHOOK_SECRET
from sim.stripe_http import SECRET_KEY, SimStripeHTTP

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PUBLIC_URL = "https://creditbot.sim"
#: CREDITBOT_ENCRYPTION_KEYS of the simulated server (webhook signing secrets are encrypted).
ENCRYPTION_KEY = "3q2qgYx1mPl7JQ4tR0g0lY3c6tqQ6c5sH0n9m8ZkWfE="
_TEMPLATE = "template.db"


def migrated_database(workdir: Path) -> Path:
    """A fresh database file from a migrated template made once per working directory."""
    template = workdir / _TEMPLATE
    if not template.exists():
        engine = make_engine(f"sqlite:///{template}")
        upgrade(engine)
        engine.dispose()
    target = workdir / "sim.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, target)
    return target


class System:
    def __init__(
        self,
        workdir: Path,
        clock: SimClock,
        stripe: FakeStripe,
        slack: FakeSlack,
        receivers: FakeReceivers | None = None,
    ) -> None:
        path = migrated_database(workdir)
        self.url = f"sqlite:///{path}"
        self.reader = Reader(str(path))
        self.clock = clock
        self.stripe = stripe
        self.slack = slack
        self.receivers = receivers or FakeReceivers(now=lambda: clock.now)
        self.crashes = CrashPoints()
        self.stripe_http = SimStripeHTTP(stripe, clock.sleep)
        self.settings = Settings(
            _env_file=None,
            database_url=self.url,
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret="sim-signing-secret",
            slack_api_url=API_URL,
            stripe_secret_key=SECRET_KEY,
            stripe_webhook_secret=WEBHOOK_SECRET,
            public_url=PUBLIC_URL,
            creditbot_encryption_keys=ENCRYPTION_KEY,
            run_scheduler=False,
        )
        self.restarts = 0
        self._stack = ExitStack()
        self.context: AppContext
        self.scheduler: Scheduler
        self._webhooks: TestClient

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> System:
        self._stack.enter_context(
            mock.patch.object(bot.stripe.client, "http_client", self.stripe_http)
        )
        self._stack.enter_context(
            mock.patch.object(bot.slack.clients, "client_class", sim_web_client(self.slack))
        )
        self._stack.enter_context(
            mock.patch.object(bot.outbound.webhooks, "opener", sim_opener(self.receivers))
        )
        # The product logs every failure it handles; the simulation reports them its own way.
        logging.disable(logging.CRITICAL)
        self._stack.callback(logging.disable, logging.NOTSET)
        self._start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()
        self.reader.close()
        self._stack.close()

    def _start(self) -> None:
        engine = make_engine(self.url)
        self.context = AppContext(settings=self.settings, engine=engine)
        self.crashes.hook(self.context.sessions)
        self.scheduler = Scheduler(self.context, leader=SoloLeader(), runner="sim:1")
        app = FastAPI()
        stripe_routes.register(app, self.context)
        # Not entered: each delivery runs in a portal of its own, so a crash inside one
        # (the process dying mid-request) leaves nothing behind to shut down.
        self._webhooks = TestClient(app, base_url=PUBLIC_URL)

    def _stop(self) -> None:
        self.crashes.unhook()
        self.context.engine.dispose()

    def restart(self) -> None:
        """A new process after a crash: nothing survives but the database and the fakes."""
        self._stop()
        self.restarts += 1
        self._start()

    # --- what the simulation does with it -------------------------------------------------

    def run_job(self, name: str) -> job_runs.RunOutcome:
        """One run of a scheduler job, recorded as the scheduler records it."""
        return self.scheduler.run_now(name, now=self.clock.now)

    def post_webhook(self, payload: bytes, signature: str) -> int:
        """Stripe posts an event to `/stripe/webhook`; returns the status it got."""
        response = self._webhooks.post(
            "/stripe/webhook",
            content=payload,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
        )
        return response.status_code


JOB_NAMES = tuple(spec.name for spec in JOBS)
