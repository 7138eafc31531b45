"""The people and programs around creditbot, doing what the steps say through the same
functions the product's surfaces call.

- Agent runtimes charge through the ledger services the /v1 handlers call (`charge`,
  `start_call`, `continue_call`, `end_call`), one transaction per request as the API's unit
  of work runs them. A runtime whose request died with the process retries it, with the
  same key, once the service is back; a call hangs up when a minute is refused.
- Billing admins act through what the Slack listeners and the CLI call: agent and account
  settings, auto-recharge settings, Checkout and one-click top-ups, adding a card.
- Customers pay on Checkout pages; the bank changes its mind about cards; Stripe support
  refunds payments; Slack and Stripe fail.

Each action is run by `Actors.act`, which returns what the checker needs to know about
the answers it got.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot import stripe as stripe_gateway
from bot.context import secrets_cipher
from ledger.accounts import configure_account
from ledger.agents import change_agent
from ledger.audit import Actor
from ledger.auto_recharge import update_auto_recharge
from ledger.calls import continue_call, end_call, start_call
from ledger.charges import Charge, charge
from ledger.db import transaction
from ledger.destinations import add_endpoint, remove_endpoint
from sim import steps as s
from sim.fake_receivers import hook_url
from sim.system import System

#: How long a runtime or an admin waits before trying again after the service died.
RETRY_AFTER = timedelta(seconds=5)
#: Who adds and removes webhook endpoints (`creditbot webhooks add|remove`).
OPERATOR = Actor.cli("sim-operator")


@dataclass(frozen=True)
class Answer:
    """A charge as the runtime was answered."""

    acct: int
    agent: int
    key: str
    charge: Charge


@dataclass(frozen=True)
class CallEnded:
    """A call's end as the runtime was answered."""

    acct: int
    call_id: str
    duration: int
    minutes: int
    charged: int
    refunded: int


@dataclass(frozen=True)
class FollowUp:
    """Something that follows from a step: a call's next minute, a customer paying, a
    request retried after a crash (which keeps the kind of the step it retries)."""

    at: datetime
    order: int
    label: str
    action: Callable[[], list[Any]]
    kind: str = "followup"
    #: Whether it runs in creditbot's process (a customer on Stripe's page does not).
    in_process: bool = True


@dataclass
class Hook:
    """A webhook endpoint the simulation added: what it asked for, and the outbox messages
    it is owed (those written after it was added, and before it was removed)."""

    hook: int
    acct: int
    endpoint_id: int
    events: tuple[str, ...]
    after_message: int
    until_message: int | None = None


@dataclass
class World:
    """Ids the database gave the setup's accounts and agents, and what is under way."""

    accounts: list[int] = field(default_factory=list)
    agents: list[list[int]] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    #: Webhook endpoints added, by the simulation's number for them.
    hooks: dict[int, Hook] = field(default_factory=dict)
    #: Calls under way, by id.
    calls: dict[str, Any] = field(default_factory=dict)
    agenda: list[FollowUp] = field(default_factory=list)
    order: int = 0

    def later(self, at: datetime, label: str, action: Callable[[], list[Any]], *,
              kind: str = "followup", in_process: bool = True) -> None:  # fmt: skip
        self.order += 1
        self.agenda.append(FollowUp(at, self.order, label, action, kind, in_process))
        self.agenda.sort(key=lambda item: (item.at, item.order))

    def acct_index(self, account_id: int) -> int:
        return self.accounts.index(account_id)


def _key(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:16]


class Actors:
    def __init__(self, system: System, world: World) -> None:
        self.system = system
        self.world = world

    @property
    def now(self) -> datetime:
        return self.system.clock.now

    def _tx(self, work: Callable[[Session], Any]) -> Any:
        return transaction(self.system.context.sessions, work)

    def act(self, step: s.Step) -> list[Any]:
        """Do what `step` says; returns the answers the checker looks at."""
        handler = getattr(self, f"_{step.kind}")
        return handler(step)

    # --- runtimes -------------------------------------------------------------------------

    def _messages(self, step: s.Messages) -> list[Any]:
        acct, agent = self.world.accounts[step.acct], self.world.agents[step.acct][step.agent]
        request = hashlib.sha256(f"messages:{agent}:{step.quantity}".encode()).hexdigest()
        result = self._tx(
            lambda session: charge(session, acct, agent, "message", step.quantity,
                                   idempotency_key=f"msg:{step.key}", request_hash=request)
        )  # fmt: skip
        return [Answer(step.acct, step.agent, f"msg:{step.key}", result)]

    def _call(self, step: s.Call) -> list[Any]:
        acct, agent = self.world.accounts[step.acct], self.world.agents[step.acct][step.agent]
        first = self._tx(lambda session: start_call(session, acct, agent, idempotency_key=step.key))
        answers: list[Any] = [Answer(step.acct, step.agent, f"call-start:{step.key}", first.charge)]
        if first.hang_up or first.call_id in self.world.calls:
            return answers  # refused, or a retry of a call already under way
        call = _CallUnderWay(self, step, first.call_id, self.now)
        self.world.calls[first.call_id] = call
        call.plan_next()
        return answers

    # --- admins ---------------------------------------------------------------------------

    def _agent_settings(self, step: s.AgentSettings) -> list[Any]:
        acct, agent = self.world.accounts[step.acct], self.world.agents[step.acct][step.agent]
        self._tx(lambda session: change_agent(session, acct, agent, behaviour=step.behaviour,
                                              monthly_limit=step.limit, now=self.now))  # fmt: skip
        return []

    def _account_settings(self, step: s.AccountSettings) -> list[Any]:
        acct = self.world.accounts[step.acct]
        self._tx(lambda session: configure_account(session, acct, **dict(step.changes)))
        return []

    def _auto_recharge(self, step: s.AutoRecharge) -> list[Any]:
        acct = self.world.accounts[step.acct]
        self._tx(
            lambda session: update_auto_recharge(
                session, acct, enabled=step.enabled, threshold_minor=step.threshold_minor,
                amount_minor=step.amount_minor, monthly_cap_minor=step.cap_minor, now=self.now,
            )
        )  # fmt: skip
        return []

    def _checkout_topup(self, step: s.CheckoutTopup) -> list[Any]:
        acct = self.world.accounts[step.acct]
        url = stripe_gateway.create_topup_checkout(
            self.system.context, acct, step.amount_minor, "UADMIN"
        )
        if step.pays_after is not None:
            self._customer_completes(url, step.card, step.pays_after)
        return []

    def _saved_card_topup(self, step: s.SavedCardTopup) -> list[Any]:
        acct = self.world.accounts[step.acct]
        stripe_gateway.charge_saved_card(
            self.system.context, acct, step.amount_minor, step.key, "UADMIN"
        )
        return []

    def _add_card(self, step: s.AddCard) -> list[Any]:
        acct = self.world.accounts[step.acct]
        url = stripe_gateway.create_card_checkout(self.system.context, acct, "UADMIN")
        self._customer_completes(url, step.card, step.completes_after)
        return []

    def _customer_completes(self, url: str, card: str, after: int) -> None:
        session_id = url.rsplit("/", 1)[-1]
        last4 = str(4000 + len(self.system.stripe.payment_methods))[-4:]

        def pay() -> list[Any]:
            self.system.stripe.complete_session(session_id, card, last4)
            return []

        self.world.later(
            self.now + timedelta(seconds=after),
            f"customer completes {session_id}",
            pay,
            in_process=False,
        )

    # --- operators ----------------------------------------------------------------------

    def _add_webhook(self, step: s.AddWebhook) -> list[Any]:
        if step.hook in self.world.hooks:
            return []  # a retry after a crash that came after the commit: it is there
        acct = self.world.accounts[step.acct]
        cipher = secrets_cipher(self.system.context)

        def add(session: Session) -> tuple[int, list[str], str]:
            endpoint, secret = add_endpoint(session, acct, hook_url(step.hook), cipher=cipher,
                                            event_types=step.events, actor=OPERATOR, now=self.now)  # fmt: skip
            return endpoint.id, list(endpoint.event_types or []), secret

        endpoint_id, events, secret = self._tx(add)
        self.world.hooks[step.hook] = Hook(
            step.hook, step.acct, endpoint_id, tuple(events), self.system.reader.last_message()
        )
        self.system.receivers.open(step.hook, secret)
        return []

    def _remove_webhook(self, step: s.RemoveWebhook) -> list[Any]:
        hook = self.world.hooks.get(step.hook)
        if hook is None or hook.until_message is not None:
            return []  # never added (a shrunk trace), or already removed
        acct = self.world.accounts[step.acct]
        self._tx(lambda session: remove_endpoint(session, hook.endpoint_id, acct, actor=OPERATOR,
                                                 now=self.now))  # fmt: skip
        hook.until_message = self.system.reader.last_message()
        receiver = self.system.receivers.receiver(step.hook)
        if receiver is not None:
            receiver.removed = True
        return []

    # --- the bank, Stripe support, the network, the machine -------------------------------

    def _card_trouble(self, step: s.CardTrouble) -> list[Any]:
        for method in self.system.stripe.cards_of(self.world.accounts[step.acct]):
            self.system.stripe.behaviour[method] = step.card
        return []

    def _stripe_refund(self, step: s.StripeRefund) -> list[Any]:
        fake = self.system.stripe
        acct = self.world.accounts[step.acct]
        charges = sorted(c for c, obj in fake.charges.items()
                         if fake.account_of(obj) == acct and obj["amount_refunded"] < obj["amount"])  # fmt: skip
        if charges:
            chosen = fake.charges[charges[step.pick % len(charges)]]
            fake.refund(chosen["id"], max(1, chosen["amount"] * step.percent // 100))
        return []

    def _slack_outage(self, step: s.SlackOutage) -> list[Any]:
        self.system.slack.outages.append(
            (self.now, self.now + timedelta(minutes=step.minutes), step.status)
        )
        return []

    def _slack_trouble(self, step: s.SlackTrouble) -> list[Any]:
        self.system.slack.trouble.extend(step.faults)
        return []

    def _receiver_outage(self, step: s.ReceiverOutage) -> list[Any]:
        receiver = self.system.receivers.receiver(step.hook)
        if receiver is not None:
            receiver.outages.append(
                (self.now, self.now + timedelta(minutes=step.minutes), step.status)
            )
        return []

    def _receiver_trouble(self, step: s.ReceiverTrouble) -> list[Any]:
        receiver = self.system.receivers.receiver(step.hook)
        if receiver is not None:
            receiver.trouble.extend(step.faults)
        return []

    def _stripe_trouble(self, step: s.StripeTrouble) -> list[Any]:
        self.system.stripe_http.trouble.extend((fault, step.on) for fault in step.faults)
        return []

    def _crash(self, step: s.Crash) -> list[Any]:
        self.system.crashes.pending = (step.commits, step.during)
        return []

    def _jump(self, step: s.Jump) -> list[Any]:
        self.system.clock.set(step.to)
        return []


class _CallUnderWay:
    """A call the runtime is on: it asks for each minute as it starts, hangs up when one is
    refused, and reports the end (how long the call really lasted). A request retried
    after a crash asks for the same minute again; nothing is planned twice."""

    def __init__(self, actors: Actors, step: s.Call, call_id: str, started: datetime) -> None:
        self.actors, self.step, self.call_id, self.started = actors, step, call_id, started
        self.minutes = 1
        self.planned = {1}
        self.ending = False
        self.acct = actors.world.accounts[step.acct]

    def plan_next(self) -> None:
        world, n = self.actors.world, self.minutes + 1
        if self.step.seconds > self.minutes * 60:
            if n not in self.planned:
                self.planned.add(n)
                at = self.started + timedelta(seconds=self.minutes * 60)
                world.later(at, f"call {self.call_id[:8]} minute {n}", lambda: self.minute(n))
        else:
            self._end_at(self.started + timedelta(seconds=self.step.seconds), self.step.seconds)

    def _end_at(self, at: datetime, seconds: int) -> None:
        if not self.ending:
            self.ending = True
            label = f"call {self.call_id[:8]} ends after {seconds}s"
            self.actors.world.later(at, label, lambda: self.end(seconds))

    def minute(self, n: int) -> list[Any]:
        answer = self.actors._tx(lambda session: continue_call(session, self.acct, self.call_id, n))
        found = [
            Answer(
                self.step.acct, self.step.agent, f"call:{self.call_id}:minute:{n}", answer.charge
            )
        ]
        if answer.hang_up:
            # Hung up as the minute was refused: the call lasted the minutes it paid.
            self._end_at(self.actors.now, (n - 1) * 60)
            return found
        self.minutes = max(self.minutes, n)
        self.plan_next()
        return found

    def end(self, seconds: int) -> list[Any]:
        result = self.actors._tx(
            lambda session: end_call(session, self.acct, self.call_id, seconds)
        )
        return [CallEnded(self.step.acct, self.call_id, seconds, result.minutes_charged,
                          result.charged, result.refunded)]  # fmt: skip
