"""The simulation's inputs: what the outside world does, and when.

A run is a list of these steps, generated from the seed (`sim.workload`) or read back from a
saved trace. They are the unit of shrinking: dropping steps and replaying the rest is how a
failure is cut down to the few steps that still cause it. What the system does in reply
(scheduler runs, webhook deliveries, a call's next minutes, a customer paying on Checkout,
a runtime retrying after a crash) follows from these and from the seed, and is not an input.

Accounts and agents are named by their index in the run's `Setup`, so a trace reads the
same whatever ids the database gives them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar


@dataclass(frozen=True)
class Step:
    at: datetime
    kind: ClassVar[str] = "step"

    def describe(self) -> str:
        fields = [f for f in dataclasses.fields(self) if f.name != "at"]
        return (
            f"{self.kind}(" + ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields) + ")"
        )

    @property
    def account(self) -> int | None:
        return getattr(self, "acct", None)


# --- agent runtimes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Messages(Step):
    """A runtime asks to send or process `quantity` messages (one request, one key)."""

    kind: ClassVar[str] = "messages"
    acct: int
    agent: int
    quantity: int
    key: str


@dataclass(frozen=True)
class Call(Step):
    """A call of `seconds`: minute 1 at the start, each further minute as it starts, the end.
    The runtime hangs up when a minute is refused."""

    kind: ClassVar[str] = "call"
    acct: int
    agent: int
    seconds: int
    key: str


# --- billing admins -----------------------------------------------------------------------


@dataclass(frozen=True)
class AgentSettings(Step):
    """An admin saves an agent's settings (behaviour; monthly limit in milli-credits, or
    None for no limit)."""

    kind: ClassVar[str] = "agent_settings"
    acct: int
    agent: int
    behaviour: str
    limit: int | None


@dataclass(frozen=True)
class AccountSettings(Step):
    """An operator changes account settings (`creditbot accounts configure`)."""

    kind: ClassVar[str] = "account_settings"
    acct: int
    changes: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class AutoRecharge(Step):
    kind: ClassVar[str] = "auto_recharge"
    acct: int
    enabled: bool
    threshold_minor: int
    amount_minor: int
    cap_minor: int


@dataclass(frozen=True)
class CheckoutTopup(Step):
    """An admin presses Pay for a top-up; the customer pays `pays_after` seconds later
    with a new card that behaves as `card` (None: the page is abandoned)."""

    kind: ClassVar[str] = "checkout_topup"
    acct: int
    amount_minor: int
    pays_after: int | None
    card: str


@dataclass(frozen=True)
class SavedCardTopup(Step):
    """An admin tops up in one click with the saved card."""

    kind: ClassVar[str] = "saved_card_topup"
    acct: int
    amount_minor: int
    key: str


@dataclass(frozen=True)
class AddCard(Step):
    """An admin adds (or replaces) the card on a Checkout page in setup mode."""

    kind: ClassVar[str] = "add_card"
    acct: int
    card: str
    completes_after: int


@dataclass(frozen=True)
class AddWebhook(Step):
    """An operator adds webhook endpoint number `hook` (`creditbot webhooks add`), receiving
    `events` (types or families; empty: all); its receiver gets the secret."""

    kind: ClassVar[str] = "add_webhook"
    acct: int
    hook: int
    events: tuple[str, ...] = ()


@dataclass(frozen=True)
class RemoveWebhook(Step):
    """An operator removes endpoint number `hook` (`creditbot webhooks remove`)."""

    kind: ClassVar[str] = "remove_webhook"
    acct: int
    hook: int


# --- the bank and Stripe support ---------------------------------------------------------


@dataclass(frozen=True)
class CardTrouble(Step):
    """The bank changes its mind about every card of the account."""

    kind: ClassVar[str] = "card_trouble"
    acct: int
    card: str


@dataclass(frozen=True)
class StripeRefund(Step):
    """Stripe support refunds `percent`% of one of the account's payments (the `pick`-th
    of those it has, counting round)."""

    kind: ClassVar[str] = "stripe_refund"
    acct: int
    pick: int
    percent: int


# --- the network and the machine -----------------------------------------------------------


@dataclass(frozen=True)
class SlackOutage(Step):
    kind: ClassVar[str] = "slack_outage"
    minutes: int
    status: int


@dataclass(frozen=True)
class SlackTrouble(Step):
    """The next Slack requests fail: '500', '429:<seconds>', 'timeout', 'lost'."""

    kind: ClassVar[str] = "slack_trouble"
    faults: tuple[str, ...]


@dataclass(frozen=True)
class ReceiverOutage(Step):
    """Webhook endpoint `hook`'s receiver answers `status` for `minutes`."""

    kind: ClassVar[str] = "receiver_outage"
    acct: int
    hook: int
    minutes: int
    status: int


@dataclass(frozen=True)
class ReceiverTrouble(Step):
    """The next requests to endpoint `hook` fail: '500', '503', 'timeout', 'lost'."""

    kind: ClassVar[str] = "receiver_trouble"
    acct: int
    hook: int
    faults: tuple[str, ...]


@dataclass(frozen=True)
class StripeTrouble(Step):
    """The next Stripe requests matching `on` ('' any, 'checkout', 'post /v1/payment_intents'
    ...) fail: '500', '429', 'connect', 'lost'."""

    kind: ClassVar[str] = "stripe_trouble"
    faults: tuple[str, ...]
    on: str = ""


@dataclass(frozen=True)
class Crash(Step):
    """The process will die just before the `commits`-th commit of the next step of kind
    `during` ('' for any step; 'job' for any job; 'job:renewals', 'webhook', ...)."""

    kind: ClassVar[str] = "crash"
    commits: int
    during: str = ""


@dataclass(frozen=True)
class Jump(Step):
    """The machine's clock jumps to `to`: nothing runs in between, everything due runs late."""

    kind: ClassVar[str] = "jump"
    to: datetime


STEP_TYPES: dict[str, type[Step]] = {
    cls.kind: cls
    for cls in (Messages, Call, AgentSettings, AccountSettings, AutoRecharge, CheckoutTopup,
                SavedCardTopup, AddCard, AddWebhook, RemoveWebhook, CardTrouble, StripeRefund,
                SlackOutage, SlackTrouble, ReceiverOutage, ReceiverTrouble, StripeTrouble, Crash,
                Jump)
}  # fmt: skip


def to_json(step: Step) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": step.kind}
    for f in dataclasses.fields(step):
        value = getattr(step, f.name)
        data[f.name] = value.isoformat() if isinstance(value, datetime) else value
    return data


def from_json(data: dict[str, Any]) -> Step:
    cls = STEP_TYPES[data["kind"]]
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        value = data[f.name]
        if f.name in ("at", "to"):
            value = datetime.fromisoformat(value)
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        values[f.name] = value
    return cls(**values)
