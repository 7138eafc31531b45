"""Webhook endpoints receive each event once, in order, none lost (docs/operations.md).

Each endpoint the simulation added is owed, in outbox order, every event of its account's
messages written after it was added and before it was removed: each alert Slack gets as
its own type, an `agent.stopped` / `agent.resumed` beside the agent's stopped and resumed
alerts, less what its event types leave out. Worked out here from the docs, not from the
product's delivery rows:

- **each event once, in order, none lost**: what its receiver takes, read in order, is
  what it is owed, each once; a delivery is marked delivered only once received; once the
  run settles, everything owed to a live endpoint has arrived and nothing waits for one.
  As with Slack, the one duplicate allowed (and counted) follows a receipt whose answer
  never reached creditbot (lost, or the process died before recording it);
- **agent events agree with agent statuses**: an `agent.*` event says what its alert
  says (the alert is checked against the model), and an endpoint that has received all it
  is owed has heard each agent's status as the model has it;
- **signed with the endpoint's secret** and **nothing delivered to a removed endpoint**:
  the receivers' own findings (sim/fake_receivers.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sim.actors import Hook, World
from sim.fake_receivers import FakeReceivers, Receipt, event_of
from sim.model import AccountModel, Violation
from sim.observe import Look, OutboxRow, Reader

ONCE = "webhook events received once each, in order, none lost"
AGENTS = "agent events agree with agent statuses"
_RUNTIME = {"alert.agent_stopped": "agent.stopped", "alert.agent_resumed": "agent.resumed"}
_STATUS = {"agent.stopped": "stopped", "agent.resumed": "active"}

Event = tuple[int, str]  # (message id, event type)


def events_of(kind: str) -> tuple[str, ...]:
    """The event types a message of `kind` goes to endpoints as."""
    if kind.startswith("alert."):
        return (kind, _RUNTIME[kind]) if kind in _RUNTIME else (kind,)
    return (kind,) if kind.startswith("agent.") else ()


def wants(asked: tuple[str, ...], event_type: str) -> bool:
    """Whether an endpoint that asked for `asked` (empty: all) gets `event_type`."""
    return not asked or event_type in asked or event_type.split(".")[0] + ".*" in asked


@dataclass
class _Inbox:
    hook: Hook
    account_id: int
    owed: list[Event] = field(default_factory=list)
    #: Events received at least once (a prefix of `owed`), and whether creditbot may not
    #: have heard that the last of them arrived.
    received: int = 0
    last_uncertain: bool = False
    #: Received, not yet marked delivered.
    unmarked: set[Event] = field(default_factory=set)
    #: The last `agent.*` event received for each agent: (status, reason).
    agents: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    closed: bool = False

    @property
    def live(self) -> bool:
        return self.hook.until_message is None


class EndpointChecker:
    def __init__(self, receivers: FakeReceivers, world: World, reader: Reader,
                 model: dict[int, AccountModel]) -> None:  # fmt: skip
        self.receivers, self.world, self.reader, self.model = receivers, world, reader, model
        self.inboxes: dict[int, _Inbox] = {}
        self.messages: dict[int, OutboxRow] = {}
        self.marked: set[tuple[int, int, str]] = set()
        self._seen = 0
        self._findings = 0
        self.counts: Counter[str] = Counter()

    def after(self, look: Look, since: Any) -> None:
        if not self.world.hooks:
            return
        if len(self.receivers.findings) > self._findings:
            raise Violation(*self.receivers.findings[self._findings])
        for hook in self.world.hooks.values():
            if hook.hook not in self.inboxes:
                self.inboxes[hook.hook] = _Inbox(hook, self.world.accounts[hook.acct])
                self.counts["webhook endpoints added"] += 1
        for inbox in self.inboxes.values():
            if not inbox.live and not inbox.closed:
                # What still waited for a removed endpoint was dropped with it.
                inbox.closed = True
                inbox.unmarked.clear()
                self.counts["webhook endpoints removed"] += 1
        for row in look.outbox:
            self._owe(row)
        touched: set[int] = set()
        for receipt in self.receivers.receipts[self._seen :]:
            touched.add(self._receive(receipt))
        self._seen = len(self.receivers.receipts)
        self._marks(since, touched)
        for hook in sorted(touched):
            self._consistent(self.inboxes[hook])

    def _owe(self, row: OutboxRow) -> None:
        types = events_of(row.kind)
        if not types:
            return
        self.messages[row.id] = row
        for inbox in self.inboxes.values():
            hook = inbox.hook
            if inbox.account_id != row.account_id or row.id <= hook.after_message:
                continue
            if hook.until_message is not None and row.id > hook.until_message:
                continue
            inbox.owed += [(row.id, t) for t in types if wants(hook.events, t)]

    def _receive(self, receipt: Receipt) -> int:
        inbox = self.inboxes[receipt.hook]
        event = event_of(receipt)
        uncertain = receipt.answer_lost or receipt.crashed
        self.counts["webhook events received"] += 1
        if inbox.received < len(inbox.owed) and event == inbox.owed[inbox.received]:
            self._check_body(inbox, receipt)
            inbox.unmarked.add(event)
            inbox.received += 1
            inbox.last_uncertain = uncertain
            return receipt.hook
        if inbox.received and event == inbox.owed[inbox.received - 1]:
            if not inbox.last_uncertain:
                raise Violation(ONCE, f"endpoint {receipt.hook}: {receipt.webhook_id} "
                                      "received twice (its first receipt was answered)")  # fmt: skip
            self.counts["webhook events received twice after the answer was lost"] += 1
            inbox.last_uncertain = uncertain
            return receipt.hook
        want = inbox.owed[inbox.received] if inbox.received < len(inbox.owed) else None
        later = event in inbox.owed[inbox.received + 1 :]
        raise Violation(ONCE, f"endpoint {receipt.hook}: received {receipt.webhook_id}"
                              f"{' out of order' if later else ''}; the next event owed is "
                              f"{_name(want) if want else 'none'}")  # fmt: skip

    def _check_body(self, inbox: _Inbox, receipt: Receipt) -> None:
        message_id, event_type = event_of(receipt)
        row = self.messages[message_id]
        data = receipt.event["data"]
        if data.get("account_id") != row.account_id:
            raise Violation(ONCE, f"endpoint {receipt.hook}: {receipt.webhook_id} names "
                                  f"account {data.get('account_id')}, not {row.account_id}")  # fmt: skip
        if event_type not in _STATUS:
            wrong = [k for k, v in row.payload.items() if data.get(k) != v]
            if wrong:
                raise Violation(ONCE, f"endpoint {receipt.hook}: {receipt.webhook_id} carries "
                                      f"{wrong} unlike its alert")  # fmt: skip
            return
        status = _STATUS[event_type]
        reason = row.payload.get("reason") if status == "stopped" else None
        agent = row.payload.get("agent_id")
        said = (data.get("agent_id"), data.get("status"), data.get("reason"))
        if said != (agent, status, reason):
            raise Violation(AGENTS, f"endpoint {receipt.hook}: {receipt.webhook_id} says agent "
                                    f"{said[0]} is {said[1]}({said[2]}); its alert says agent "
                                    f"{agent} is {status}({reason})")  # fmt: skip
        inbox.agents[int(agent)] = (status, reason)

    def _marks(self, since: Any, touched: set[int]) -> None:
        by_endpoint = {h.endpoint_id: h.hook for h in self.world.hooks.values()}
        for endpoint_id, message_id, event_type in self.reader.webhook_deliveries(since):
            key = (endpoint_id, message_id, event_type)
            if key in self.marked:
                continue
            self.marked.add(key)
            hook = by_endpoint[endpoint_id]
            inbox = self.inboxes[hook]
            if (message_id, event_type) not in inbox.unmarked:
                raise Violation(ONCE, f"endpoint {hook}: {_name((message_id, event_type))} "
                                      "marked delivered but never received")  # fmt: skip
            inbox.unmarked.discard((message_id, event_type))
            touched.add(hook)

    def _consistent(self, inbox: _Inbox) -> None:
        if not inbox.live:
            return
        last = inbox.owed[inbox.received - 1] if inbox.received else None
        if inbox.unmarked and not (inbox.unmarked == {last} and inbox.last_uncertain):
            raise Violation(ONCE, f"endpoint {inbox.hook.hook}: "
                                  f"{', '.join(map(_name, sorted(inbox.unmarked)))} received "
                                  "but not marked delivered")  # fmt: skip
        if inbox.received == len(inbox.owed):
            self._agents_agree(inbox)

    def _agents_agree(self, inbox: _Inbox) -> None:
        """Caught up, the endpoint knows each agent's status as the model has it."""
        if not all(wants(inbox.hook.events, t) for t in _STATUS):
            return  # it hears only one half of the changes: its last word may be old
        agents = self.model[inbox.account_id].agents
        for agent_id, heard in inbox.agents.items():
            model = agents[agent_id]
            if heard != (model.status, model.reason):
                raise Violation(AGENTS, f"endpoint {inbox.hook.hook} last heard agent {agent_id} "
                                        f"is {heard[0]}({heard[1]}); the rules say "
                                        f"{model.status}({model.reason})")  # fmt: skip

    def settled(self) -> None:
        if not self.world.hooks:
            return
        live = {h.endpoint_id: h.hook for h in self.world.hooks.values() if h.until_message is None}
        for endpoint_id, message_id, event_type in self.reader.undelivered_webhooks():
            where = f"endpoint {live[endpoint_id]}" if endpoint_id in live else (
                f"removed endpoint (id {endpoint_id})")  # fmt: skip
            raise Violation(ONCE, f"{where}: {_name((message_id, event_type))} never delivered")
        for inbox in self.inboxes.values():
            if inbox.live and inbox.received < len(inbox.owed):
                raise Violation(ONCE, f"endpoint {inbox.hook.hook}: "
                                      f"{_name(inbox.owed[inbox.received])} never received")  # fmt: skip
            if inbox.live:
                self._consistent(inbox)
                self._agents_agree(inbox)


def _name(event: Event) -> str:
    return f"{event[1]} of alert {event[0]}"
