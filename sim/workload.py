"""The seeded workload: the accounts of a run and everything the world does to them.

Accounts get plans of different sizes, cycles anchored on awkward days (28-31 more often
than not) in awkward zones (DST ones, half-hour and 45-minute offsets, a zone whose DST
change skips midnight), rates, per-minute or per-second billing, and agents of both
behaviours with and without monthly limits. Each simulated day brings bursts of messages
and calls at each account's own pace (some exhaust their plan early, some never do),
and now and then: settings changed mid-month, top-ups through Checkout and with the saved
card, cards that start to decline or need authentication, Stripe refunds, Slack and Stripe
failures, crashes, and the machine's clock jumping across DST changes and month ends.

Everything comes from `random.Random(seed)`, so a seed is a run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sim import steps as s

ZONES = ("Europe/Madrid", "America/New_York", "Australia/Adelaide", "Asia/Kolkata",
         "America/St_Johns", "Pacific/Chatham", "Australia/Lord_Howe", "America/Santiago",
         "UTC", "Europe/London", "America/Los_Angeles", "Asia/Kathmandu")  # fmt: skip
ANCHORS = (28, 29, 29, 30, 30, 31, 31, 31, 1, 15, 30, 31)
CURRENCIES = ("USD", "USD", "EUR", "GBP", "JPY")
CARDS = ("succeed", "succeed", "succeed", "decline", "need_auth", "slow")
#: Where crashes land: any step, or the next of a kind whose crash matters most.
CRASH_DURING = ("", "", "step:messages", "step:call", "followup", "job", "job:renewals",
                "job:month_rollover", "job:auto_recharge_sweep", "job:recharge_requests",
                "job:alert_delivery", "job:stripe_reconcile", "webhook", "step:saved_card_topup",
                "step:checkout_topup", "step:agent_settings")  # fmt: skip


@dataclass(frozen=True)
class AgentPlan:
    name: str
    behaviour: str
    limit: int | None


@dataclass(frozen=True)
class AccountPlan:
    name: str
    timezone: str
    anchor: int
    currency: str
    plan_credits: int
    message_rate: int
    minute_rate: int
    per_second: bool
    agents: tuple[AgentPlan, ...]
    #: Usage per day, as a share of a 30th of the plan (1.0 spends the plan in a month).
    pace: float


@dataclass(frozen=True)
class Setup:
    seed: int
    start: datetime
    days: int
    accounts: tuple[AccountPlan, ...]

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


@dataclass(frozen=True)
class Mix:
    """How busy a run is: accounts, and the chance per day of each kind of event."""

    accounts: int = 12
    #: Message requests per account and day (the credits spent do not depend on it).
    requests: int = 10
    settings: float = 0.05
    topups: float = 0.08
    card_trouble: float = 0.05
    refunds: float = 0.015
    slack_faults: float = 0.12
    stripe_faults: float = 0.15
    crashes: float = 0.25
    jumps: float = 0.35
    #: Accounts with webhook endpoints from the start; a day's chance of an endpoint added
    #: or removed, and of trouble at one endpoint's receiver.
    webhooks: float = 0.5
    webhook_changes: float = 0.02
    receiver_faults: float = 0.08


def unit(currency: str) -> int:
    return 1 if currency == "JPY" else 100


def generate(
    seed: int, days: int, mix: Mix, start: datetime | None = None
) -> tuple[Setup, list[s.Step]]:
    rng = random.Random(seed)
    start = start or datetime(2026, 1, 20, 9, 0, tzinfo=UTC) + timedelta(days=rng.randrange(300))
    accounts = tuple(_account(rng, n, start, days) for n in range(mix.accounts))
    setup = Setup(seed, start, days, accounts)
    plan: list[s.Step] = []
    for index, account in enumerate(accounts):
        plan += _first_steps(rng, start, index, account)
    for day in range(days):
        midnight = start + timedelta(days=day)
        for index, account in enumerate(accounts):
            plan += _usage(rng, midnight, index, account, mix)
            plan += _admin(rng, midnight, index, account, mix)
        plan += _world(rng, midnight, mix)
    plan += _jumps(rng, setup, mix)
    plan += _webhooks(random.Random(seed * 31 + 7), setup, mix)
    plan = [step for step in plan if step.at < setup.end]
    plan.sort(key=lambda step: step.at)
    return setup, plan


def _account(rng: random.Random, n: int, start: datetime, days: int) -> AccountPlan:
    plan = rng.choice((200, 500, 1000, 3000, 10000)) * 1000
    timezone, anchor = rng.choice(ZONES), rng.choice(ANCHORS)
    changes = dst_changes(timezone, start, start + timedelta(days=days + 31))
    if changes and rng.random() < 0.3:
        # The most awkward day of all: the cycle starts on a day the clocks change.
        anchor = rng.choice(changes).astimezone(ZoneInfo(timezone)).day
    agents = []
    for i in range(rng.randint(1, 4)):
        limit = None if rng.random() < 0.5 else rng.choice((50, 150, 400, 1500)) * 1000
        agents.append(AgentPlan(f"agent-{i}", rng.choice(("stop", "use_balance")), limit))
    return AccountPlan(
        name=f"acct-{n}", timezone=timezone, anchor=anchor,
        currency=rng.choice(CURRENCIES), plan_credits=plan,
        message_rate=rng.choice((1000, 1000, 2000, 500)), minute_rate=rng.choice((10000, 6000, 15000)),
        per_second=rng.random() < 0.5, agents=tuple(agents), pace=rng.choice((0.3, 0.8, 1.2, 2.0, 3.5)),
    )  # fmt: skip


def _first_steps(rng: random.Random, start: datetime, i: int, a: AccountPlan) -> list[s.Step]:
    """Most accounts save a card early; many turn auto-recharge on."""
    found: list[s.Step] = []
    u = unit(a.currency)
    if rng.random() < 0.8:
        found.append(
            s.AddCard(
                start + timedelta(minutes=rng.randint(1, 60)), i, "succeed", rng.randint(30, 600)
            )
        )
    if rng.random() < 0.7:
        found.append(_auto_recharge(rng, start + timedelta(minutes=rng.randint(61, 120)), i, u))
    if rng.random() < 0.5:
        found.append(s.CheckoutTopup(start + timedelta(minutes=rng.randint(1, 180)), i,
                                     rng.choice((10, 25, 50)) * u, rng.randint(20, 900), "succeed"))  # fmt: skip
    return found


def _auto_recharge(rng: random.Random, at: datetime, i: int, u: int) -> s.AutoRecharge:
    amount = rng.choice((10, 20, 50, 100)) * u
    threshold = rng.choice((5, 10, 20, 50)) * u
    cap = amount * rng.choice((2, 3, 5, 10))
    return s.AutoRecharge(at, i, rng.random() < 0.9, threshold, amount, cap)


def _usage(
    rng: random.Random, midnight: datetime, i: int, a: AccountPlan, mix: Mix
) -> list[s.Step]:
    """A day's usage at the account's pace: a few bursts of message requests (sized so a
    day takes about `mix.requests` of them) and calls of a few minutes, some much longer."""
    budget = a.plan_credits / 30 * a.pace * rng.uniform(0.3, 1.7)
    found: list[s.Step] = []
    bursts = rng.randint(1, 3)
    calls_share = rng.random() * 0.7
    requests = max(1, round(mix.requests * (1 - calls_share) / bursts))
    for _ in range(bursts):
        center = midnight + timedelta(seconds=rng.randrange(86400))
        spend = budget / bursts
        quantity = max(1, round(spend * (1 - calls_share) / a.message_rate / requests))
        for _ in range(requests):
            at = center + timedelta(seconds=rng.randrange(0, 600))
            n = min(10_000, max(1, round(quantity * rng.uniform(0.2, 1.8))))
            found.append(s.Messages(at, i, rng.randrange(len(a.agents)), n, _key(rng)))
        call_spend = spend * calls_share
        while call_spend > 0:
            seconds = int(min(3600, rng.expovariate(1 / 150))) + 1
            call_spend -= (seconds / 60 + 1) * a.minute_rate
            at = center + timedelta(seconds=rng.randrange(0, 900))
            found.append(s.Call(at, i, rng.randrange(len(a.agents)), seconds, _key(rng)))
    return found


def _admin(
    rng: random.Random, midnight: datetime, i: int, a: AccountPlan, mix: Mix
) -> list[s.Step]:
    found: list[s.Step] = []
    u = unit(a.currency)

    def at() -> datetime:
        return midnight + timedelta(seconds=rng.randrange(86400))

    if rng.random() < mix.settings:
        agent = rng.randrange(len(a.agents))
        limit = None if rng.random() < 0.4 else rng.choice((30, 100, 300, 1000, 5000)) * 1000
        found.append(s.AgentSettings(at(), i, agent, rng.choice(("stop", "use_balance")), limit))
    if rng.random() < mix.settings / 3:
        change = rng.choice((("per_second_billing", rng.random() < 0.5),
                             ("message_rate", rng.choice((500, 1000, 2000)) ),
                             ("plan_credits", rng.choice((200, 1000, 5000)) * 1000),
                             ("plan_low_percent", rng.choice((10, 20, 50)))))  # fmt: skip
        found.append(s.AccountSettings(at(), i, (change,)))
    if rng.random() < mix.settings / 2:
        found.append(_auto_recharge(rng, at(), i, u))
    if rng.random() < mix.topups:
        pays = None if rng.random() < 0.15 else rng.randint(20, 3600)
        found.append(
            s.CheckoutTopup(at(), i, rng.choice((10, 20, 50, 200)) * u, pays, rng.choice(CARDS))
        )
    if rng.random() < mix.topups / 2:
        found.append(s.SavedCardTopup(at(), i, rng.choice((10, 50, 100)) * u, _key(rng)))
    if rng.random() < mix.card_trouble:
        found.append(
            s.CardTrouble(at(), i, rng.choice(("decline", "need_auth", "slow", "succeed")))
        )
    if rng.random() < mix.card_trouble:
        found.append(s.AddCard(at(), i, rng.choice(CARDS), rng.randint(30, 1800)))
    if rng.random() < mix.refunds:
        found.append(s.StripeRefund(at(), i, rng.randrange(10), rng.choice((10, 50, 100))))
    return found


def _world(rng: random.Random, midnight: datetime, mix: Mix) -> list[s.Step]:
    found: list[s.Step] = []

    def at() -> datetime:
        return midnight + timedelta(seconds=rng.randrange(86400))

    if rng.random() < mix.slack_faults:
        found.append(s.SlackOutage(at(), rng.choice((3, 20, 90, 240)), rng.choice((500, 503))))
    if rng.random() < mix.slack_faults:
        faults = rng.choices(("500", "429:2", "429:45", "timeout", "lost"), k=rng.randint(1, 4))
        found.append(s.SlackTrouble(at(), tuple(faults)))
    if rng.random() < mix.stripe_faults:
        on = rng.choice(("", "payment_intents", "payment_intents", "checkout", "charges"))
        # A payment whose answer is lost is the dangerous one (charged, and creditbot
        # does not know): it comes up more often there.
        kinds = (
            ("lost", "lost", "connect", "500")
            if on == "payment_intents"
            else ("500", "429", "connect", "lost")
        )
        faults = rng.choices(kinds, k=rng.randint(1, 4))
        found.append(s.StripeTrouble(at(), tuple(faults), on))
    if rng.random() < mix.crashes:
        found.append(s.Crash(at(), rng.randint(1, 4), rng.choice(CRASH_DURING)))
    return found


#: What an endpoint asks for (`creditbot webhooks add --events`; empty: every event).
HOOK_EVENTS = ((), (), ("agent.*",), ("alert.*",),
               ("alert.agent_stopped", "agent.stopped", "alert.plan_low", "alert.cycle_renewed"))  # fmt: skip


def _webhooks(rng: random.Random, setup: Setup, mix: Mix) -> list[s.Step]:
    """Webhook endpoints (one or two for some accounts from the start, others added and
    removed now and then) and their receivers' troubles. From a random stream of their own,
    so the rest of a seed's workload is what it was before endpoints existed."""
    found: list[s.Step] = []
    hooks = iter(range(1, 1_000_000))
    for i in range(len(setup.accounts)):
        live: list[int] = []

        def add(at: datetime, i: int = i, live: list[int] = live) -> None:
            hook = next(hooks)
            live.append(hook)
            found.append(s.AddWebhook(at, i, hook, rng.choice(HOOK_EVENTS)))

        if rng.random() < mix.webhooks:
            for _ in range(rng.choice((1, 1, 2))):
                add(setup.start + timedelta(minutes=rng.randint(1, 30)))
        for day in range(setup.days):
            midnight = setup.start + timedelta(days=day)
            if rng.random() < mix.webhook_changes:
                at = midnight + timedelta(seconds=rng.randrange(86400))
                if live and (len(live) > 2 or rng.random() < 0.5):
                    found.append(s.RemoveWebhook(at, i, live.pop(rng.randrange(len(live)))))
                else:
                    add(at)
            for hook in live:
                if rng.random() < mix.receiver_faults:
                    at = midnight + timedelta(seconds=rng.randrange(86400))
                    if rng.random() < 0.4:
                        found.append(s.ReceiverOutage(at, i, hook, rng.choice((2, 15, 60, 240)),
                                                      rng.choice((500, 503))))  # fmt: skip
                    else:
                        faults = rng.choices(("500", "503", "timeout", "lost"), k=rng.randint(1, 4))
                        found.append(s.ReceiverTrouble(at, i, hook, tuple(faults)))
    return found


def _jumps(rng: random.Random, setup: Setup, mix: Mix) -> list[s.Step]:
    """Clock jumps across the DST changes and month ends of the run's zones."""
    found: list[s.Step] = []
    for moment in calendar_moments(setup):
        if rng.random() < mix.jumps:
            before = moment - timedelta(minutes=rng.randint(1, 90))
            found.append(s.Jump(before, moment + timedelta(minutes=rng.randint(1, 150))))
    return found


def calendar_moments(setup: Setup) -> list[datetime]:
    """The DST changes and local month starts of the run's zones, in order."""
    found: set[datetime] = set()
    for tz in sorted({a.timezone for a in setup.accounts}):
        found.update(_zone_moments(tz, setup.start, setup.end))
    return sorted(found)


def _zone_moments(tz: str, start: datetime, end: datetime) -> list[datetime]:
    """The DST changes and local month starts of `tz` between `start` and `end`."""
    zone = ZoneInfo(tz)
    found = dst_changes(tz, start, end)
    day = start.astimezone(zone).date().replace(day=1)
    while True:
        day = (day + timedelta(days=32)).replace(day=1)
        moment = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
        if moment >= end:
            break
        found.append(moment)
    return sorted(found)


def dst_changes(tz: str, start: datetime, end: datetime) -> list[datetime]:
    """The first whole UTC hour after each change of `tz`'s offset between `start` and `end`."""
    zone = ZoneInfo(tz)
    found = []
    at = start.replace(minute=0, second=0, microsecond=0)
    offset = at.astimezone(zone).utcoffset()
    while at < end:
        at += timedelta(hours=1)
        now_offset = at.astimezone(zone).utcoffset()
        if now_offset != offset:
            found.append(at)
            offset = now_offset
    return found


def _key(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016x}"


def describe(setup: Setup) -> list[str]:
    lines = []
    for n, a in enumerate(setup.accounts):
        agents = ", ".join(
            f"{g.behaviour}{'' if g.limit is None else f' limit {g.limit // 1000}'}"
            for g in a.agents
        )
        lines.append(f"  acct {n}: {a.timezone}, cycle day {a.anchor}, {a.plan_credits // 1000} credits, "
                     f"{a.currency}, {'per-second' if a.per_second else 'per-minute'}, pace {a.pace}; agents: {agents}")  # fmt: skip
    return lines
