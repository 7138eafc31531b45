"""The simulated clock. time-machine holds every clock the product reads (`datetime.now`,
`time.time`, in every thread) at the simulation's time, which only moves when the
simulation moves it; the sleeps of slack_sdk's and stripe's retry loops move it forward
instead of waiting, so a year of retries and backoffs costs no real time (and the
alert deliverer's round deadline is measured on the simulated clock too)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any
from unittest import mock

import slack_sdk.http_retry.builtin_handlers
import slack_sdk.http_retry.handler
import time_machine

import bot.outbound.delivering
import bot.slack.alerts
import ledger.db


class _SimTime:
    """The `time` module as the retry loops see it: `sleep` moves the simulated clock."""

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock

    def sleep(self, seconds: float) -> None:
        self._clock.sleep(seconds)

    def monotonic(self) -> float:
        return self._clock.now.timestamp()

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


#: Modules whose `time.sleep` is a retry's backoff (Stripe's is `SimStripeHTTP`'s own hook),
#: and the alert and webhook deliverers, whose round deadlines are on `time.monotonic`.
_SLEEPERS: tuple[ModuleType, ...] = (
    slack_sdk.http_retry.handler,
    slack_sdk.http_retry.builtin_handlers,
    ledger.db,
    bot.slack.alerts,
    bot.outbound.delivering,
)


class SimClock:
    """Simulated UTC time; a context manager that holds the process's clocks on it."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self._stack = ExitStack()
        self._traveller: Any = None

    def __enter__(self) -> SimClock:
        self._traveller = self._stack.enter_context(time_machine.travel(self.now, tick=False))
        for module in _SLEEPERS:
            self._stack.enter_context(mock.patch.object(module, "time", _SimTime(self)))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self._traveller = None

    def set(self, when: datetime) -> None:
        """Move to `when`; the clock never goes back (a late event runs at `now`)."""
        if when > self.now:
            self.now = when
            if self._traveller is not None:
                self._traveller.move_to(when)

    def advance(self, delta: timedelta) -> None:
        self.set(self.now + delta)

    def sleep(self, seconds: float) -> None:
        self.advance(timedelta(seconds=max(0.0, seconds)))
