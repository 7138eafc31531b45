"""Stripe's webhook deliveries, with the faults of a real network: events arrive late,
twice, out of order, or never (a lost event is what reconciliation is for).

Each event Stripe emits gets a delivery plan drawn from the run's random stream when it is
first seen: usually within seconds, sometimes hours late, sometimes twice, rarely never.
A delivery creditbot does not answer with 2xx (an error, or a crash mid-request) is tried
again on Stripe's backoff for up to three days. Each attempt is signed at the moment it is
sent, with Stripe's scheme, so the endpoint's signature and age checks are exercised.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sim.fake_stripe import FakeStripe, Obj

WEBHOOK_SECRET = "whsec_sim"
#: Stripe's retry backoff after a failed delivery, then every 12 hours, for three days.
RETRIES = (60, 300, 1800, 7200, 18000, 36000)
GIVE_UP_AFTER = timedelta(days=3)


@dataclass(frozen=True)
class Odds:
    """How the network treats webhook deliveries."""

    late: float = 0.08
    duplicate: float = 0.05
    lost: float = 0.02


@dataclass(order=True)
class Delivery:
    at: datetime
    order: int
    event: Obj = field(compare=False)
    attempt: int = field(compare=False, default=1)

    def describe(self) -> str:
        obj = self.event["data"]["object"]
        return f"{self.event['type']} {self.event['id']} ({obj.get('id')}) attempt {self.attempt}"


def sign(payload: bytes, at: datetime, secret: str = WEBHOOK_SECRET) -> str:
    """`Stripe-Signature` as Stripe computes it for an attempt sent at `at`."""
    t = int(at.timestamp())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class StripeEvents:
    def __init__(self, fake: FakeStripe, rng: random.Random, odds: Odds = Odds()) -> None:
        self.fake = fake
        self.rng = rng
        self.odds = odds
        self._seen = 0
        self._queue: list[Delivery] = []
        self._order = itertools.count()
        #: Events never delivered (lost), and deliveries Stripe gave up on.
        self.lost: list[str] = []
        self.given_up: list[str] = []
        self.delivered = 0

    def plan_new(self) -> None:
        """Plan the deliveries of events emitted since the last call."""
        for event in self.fake.events[self._seen :]:
            created = datetime.fromtimestamp(event["created"], tz=self.fake.now().tzinfo)
            roll = self.rng.random()
            if roll < self.odds.lost:
                self.lost.append(event["id"])
                continue
            delay = self.rng.uniform(0.5, 20)
            if roll < self.odds.lost + self.odds.late:
                delay = self.rng.uniform(300, 6 * 3600)
            self._push(created + timedelta(seconds=delay), event, 1)
            if self.rng.random() < self.odds.duplicate:
                self._push(created + timedelta(seconds=self.rng.uniform(1, 3600)), event, 1)
        self._seen = len(self.fake.events)

    def _push(self, at: datetime, event: Obj, attempt: int) -> None:
        heapq.heappush(self._queue, Delivery(at, next(self._order), event, attempt))

    def next_at(self) -> datetime | None:
        return self._queue[0].at if self._queue else None

    def pop_due(self, until: datetime) -> Delivery | None:
        if self._queue and self._queue[0].at <= until:
            return heapq.heappop(self._queue)
        return None

    def payload(self, delivery: Delivery) -> bytes:
        return json.dumps(delivery.event).encode()

    def answered(self, delivery: Delivery, ok: bool, now: datetime) -> None:
        """What creditbot answered; a failure is retried on Stripe's schedule."""
        if ok:
            self.delivered += 1
            return
        created = datetime.fromtimestamp(delivery.event["created"], tz=now.tzinfo)
        wait = RETRIES[min(delivery.attempt - 1, len(RETRIES) - 1)]
        wait = 43200 if delivery.attempt > len(RETRIES) else wait
        retry_at = now + timedelta(seconds=wait)
        if retry_at - created > GIVE_UP_AFTER:
            self.given_up.append(delivery.event["id"])
            return
        self._push(retry_at, delivery.event, delivery.attempt + 1)

    @property
    def in_flight(self) -> int:
        return len(self._queue)
