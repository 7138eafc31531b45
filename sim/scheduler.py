"""When the scheduler's jobs run in simulated time.

Production runs every job on a fixed trigger (renewals on the minute, alert delivery every
5 s, ...). A year of that is tens of millions of runs, nearly all idle, and every job works
from what the database says is due, so an idle run changes nothing. The simulated
scheduler therefore runs a job at the first tick of its production trigger at which it
could have work: the next renewal, the next month in some account's zone, the first due
alert or recharge request, a recharge retry falling due, a payment Stripe took that the
ledger has not recorded. A job that keeps finding nothing to do while still looking due
(a capped account under its threshold, say) backs off, up to an hour, so it still runs
again and again in that state without spinning.

After a crash, nothing here is kept: the next wakeups are computed from the database again,
as a restarted scheduler would.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.scheduler.jobs import JOBS
from bot.stripe.reconcile import RECONCILE_WINDOW
from ledger.units import money_to_credits
from sim.system import System

CADENCE = {spec.name: spec.seconds for spec in JOBS}
ON_THE_MINUTE = {spec.name for spec in JOBS if spec.on_the_minute}
MAX_BACKOFF = timedelta(hours=1)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
#: The wakeup of a job that has work as long as some state lasts (not from a given time).
DUE = EPOCH


def tick_at_or_after(name: str, when: datetime) -> datetime:
    """The first tick of job `name`'s production trigger at or after `when`."""
    step = 60 if name in ON_THE_MINUTE else CADENCE[name]
    seconds = (when - EPOCH).total_seconds()
    ticks = -(-seconds // step)
    return EPOCH + timedelta(seconds=ticks * step)


def _month_after(month: str, tz: str) -> datetime:
    year, mon = int(month[:4]), int(month[5:7])
    year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return datetime(year, mon, 1, tzinfo=ZoneInfo(tz)).astimezone(UTC)


#: The accounts, agents and recharge attempts as the checker last read them.
Facts = Callable[
    [], tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]], dict[int, dict[str, Any]]]
]


class SimScheduler:
    def __init__(self, system: System, facts: Facts, moments: list[datetime]) -> None:
        self.system = system
        self.facts = facts
        #: DST changes and month starts in the accounts' zones: the calendar jobs also run
        #: right after each (where calendar bugs live), though they should find nothing.
        self.moments = moments
        self.last_run: dict[str, datetime] = {}
        self.started = system.clock.now
        self._idle: dict[str, int] = {}
        self._cache: tuple[int, int, dict[str, datetime | None]] | None = None

    def restarted(self) -> None:
        self.started = self.system.clock.now
        self.last_run.clear()
        self._idle.clear()
        self._cache = None

    # --- what could be due ------------------------------------------------------------------

    def _wakeups(self) -> dict[str, datetime | None]:
        facts = self.facts()
        state = (id(facts[0]), len(self.system.stripe.events))
        if self._cache is not None and self._cache[:2] == state:
            return self._cache[2]
        wakeups = self._from_facts(*facts)
        (wakeups["recharge_requests"], wakeups["alert_delivery"],
         wakeups["webhook_delivery"]) = self.system.reader.first_due()  # fmt: skip
        wakeups["stripe_reconcile"] = self._unrecorded_payment()
        self._cache = (*state, wakeups)
        return wakeups

    def _from_facts(self, accounts: dict[int, dict[str, Any]], agents: dict[int, dict[str, Any]],
                    recharges: dict[int, dict[str, Any]]) -> dict[str, datetime | None]:  # fmt: skip
        """Wakeups read off the accounts, agents and recharge attempts the checker just read."""
        now = self.system.clock.now
        months: dict[int, str] = {}
        for agent in agents.values():
            account = agent["account_id"]
            months[account] = min(months.get(account, agent["month"]), agent["month"])
        rollover = min(
            (_month_after(m, accounts[a]["timezone"]) for a, m in months.items()), default=None
        )
        pending = [r for r in recharges.values() if r["status"] == "pending"]
        sweep = min((r["next_try_at"] for r in pending if r["next_try_at"]), default=None)
        for a in accounts.values():
            # Looser than the sweep's own test (it skips accounts with an attempt in
            # flight): the simulation must not lean on the guards it checks.
            if a["auto_recharge_enabled"] and not a["auto_recharge_paused"]:
                threshold = money_to_credits(a["auto_recharge_threshold_minor"], a["currency"],
                                             a["credits_per_unit"])  # fmt: skip
                if a["wallet_balance"] < threshold:
                    sweep = DUE
        last = self.last_run.get("renewals") or now
        moment = next((m for m in self.moments if m > last), None)
        renewal = min((a["next_renewal_at"] for a in accounts.values() if a["next_renewal_at"]),
                      default=None)  # fmt: skip
        return {
            "renewals": min((t for t in (renewal, moment) if t is not None), default=None),
            "month_rollover": rollover,
            "auto_recharge_sweep": sweep,
        }

    def _unrecorded_payment(self) -> datetime | None:
        """Due, if Stripe holds a recent creditbot payment the ledger has not credited, or
        a recent refund of a credited payment it has not taken back."""
        fake = self.system.stripe
        since = int((self.system.clock.now - RECONCILE_WINDOW).timestamp())
        paid = {i["id"] for i in fake.succeeded_payments()
                if i["created"] >= since and fake.account_of(i) is not None}  # fmt: skip
        refunded = {r["payment_intent"]: fake.charges[r["charge"]]["amount_refunded"]
                    for r in fake.refunds.values() if r["created"] >= since}  # fmt: skip
        if not paid and not refunded:
            return None
        recorded = {t["payment_intent_id"]: t["refunded_minor"] for t in self.system.reader.table(
            "SELECT payment_intent_id, refunded_minor FROM topups WHERE status = 'paid'")}  # fmt: skip
        short = [i for i, total in refunded.items() if i in recorded and recorded[i] < total]
        return DUE if paid - recorded.keys() or short else None

    # --- the next run ---------------------------------------------------------------------

    def next(self) -> tuple[datetime, str] | None:
        """The next job run: (when, job), or None when no job could have work."""
        best: tuple[datetime, str] | None = None
        wakeups = dict(self._wakeups())
        # Forgetting old runs is daily housekeeping, whatever the database says.
        wakeups["prune_job_runs"] = (
            self.last_run.get("prune_job_runs") or self.system.clock.now
        ) + timedelta(days=1)
        for name, wakeup in wakeups.items():
            if wakeup is None:
                continue
            at = max(wakeup, self.system.clock.now)
            last = self.last_run.get(name)
            if last is not None:
                at = max(at, last + timedelta(seconds=CADENCE[name]))
                idle = self._idle.get(name, 0)
                if idle and wakeup <= last:
                    backoff = timedelta(seconds=CADENCE[name] * 2 ** min(idle, 12))
                    at = max(at, last + min(MAX_BACKOFF, backoff))
            at = tick_at_or_after(name, at)
            if best is None or (at, _rank(name)) < (best[0], _rank(best[1])):
                best = (at, name)
        return best

    def busy(self) -> bool:
        """Whether a job other than the calendar's (renewals, month rollover) has work."""
        calendar = ("renewals", "month_rollover", "prune_job_runs")
        return any(at is not None for name, at in self._wakeups().items() if name not in calendar)

    def ran(self, name: str, at: datetime, did_work: bool) -> None:
        """Job `name` ran at `at`; an idle run of a job still looking due backs it off."""
        wakeup = self._wakeups().get(name)
        self.last_run[name] = at
        if did_work or wakeup is None or wakeup > at:
            self._idle[name] = 0
        else:
            self._idle[name] = self._idle.get(name, 0) + 1


_ORDER = [spec.name for spec in JOBS]


def _rank(name: str) -> int:
    return _ORDER.index(name)
