"""A hypothesis state machine drives the ledger with random charges, refunds, wallet
credits, renewals, settings changes and replays, next to a simple model of the rules.

After every step: balances equal the model and their postings, nothing is negative, every
transfer is one-sided-free, and a replayed key changed nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import func, select

from ledger.accounts import AccountSettings, balance, create_account
from ledger.agents import add_agent, update_agent
from ledger.charges import charge, refund
from ledger.cycles import month_key
from ledger.db import make_engine, make_session_factory, transaction
from ledger.errors import IdempotencyConflict
from ledger.models import Account, Transfer
from ledger.renewals import renew_due
from ledger.units import credits
from ledger.verify import verify
from ledger.wallet import credit_wallet
from tests.support.factories import NOW
from tests.support.property_databases import database_factory

PLAN = credits(100)
PRICES = {"message": credits(1), "call_minute": credits(10)}


@dataclass
class ModelAgent:
    behaviour: str
    limit: int | None = None
    month: str = ""
    spend: int = 0
    reason: str | None = None


@dataclass
class Model:
    plan: int = PLAN
    wallet: int = 0
    agents: dict[int, ModelAgent] = field(default_factory=dict)
    keys: dict[str, tuple] = field(default_factory=dict)
    charges: list[list[int]] = field(
        default_factory=list
    )  # [entry, agent, plan part, wallet part, refunded]

    def room(self, a: ModelAgent) -> int:
        plan = self.plan if a.limit is None else min(self.plan, max(0, a.limit - a.spend))
        return plan + (self.wallet if a.behaviour == "use_balance" else 0)

    def roll(self, a: ModelAgent, month: str) -> bool:
        if a.month != month:
            a.month, a.spend = month, 0
            return True
        return False

    def resume(self, month: str, reasons: tuple[str, ...], only: ModelAgent | None = None) -> None:
        for a in [only] if only else self.agents.values():
            if a.reason in reasons:
                self.roll(a, month)
                if self.room(a) > 0:
                    a.reason = None

    def charge(self, a: ModelAgent, price: int, month: str) -> tuple[bool, str | None, int, int]:
        new_month = self.roll(a, month)
        if a.reason and not (a.reason == "monthly_limit" and new_month):
            return False, a.reason, 0, 0
        room = None if a.limit is None else max(0, a.limit - a.spend)
        plan_room = self.plan if room is None else min(self.plan, room)
        if a.behaviour == "stop":
            if price > plan_room:
                a.reason = (
                    "monthly_limit" if room is not None and room < price else "plan_exhausted"
                )
                return False, a.reason, 0, 0
            p, w = price, 0
        else:
            p = min(price, plan_room)
            w = price - p
            if w > self.wallet:
                a.reason = "wallet_empty"
                return False, a.reason, 0, 0
        self.plan -= p
        self.wallet -= w
        a.spend += price
        a.reason = None
        if self.room(a) == 0:
            if a.behaviour == "use_balance":
                a.reason = "wallet_empty"
            elif a.limit is not None and a.spend >= a.limit:
                a.reason = "monthly_limit"
            else:
                a.reason = "plan_exhausted"
        return True, None, p, w


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = make_engine(NEW_DATABASE())
        self.sessions = make_session_factory(self.engine)
        self.now = NOW
        self.model = Model()

        def setup(s):
            acc = create_account(
                s, AccountSettings(name="Prop", plan_credits=PLAN, cycle_anchor_day=1), now=self.now
            )
            a = add_agent(s, acc.id, "A", behaviour="stop", now=self.now)
            b = add_agent(s, acc.id, "B", behaviour="use_balance", now=self.now)
            return acc.id, a.id, b.id

        self.account, a, b = transaction(self.sessions, setup)
        month = month_key(self.now, "UTC")
        self.model.agents = {
            a: ModelAgent("stop", month=month),
            b: ModelAgent("use_balance", month=month),
        }
        self.agent_ids = [a, b]

    def teardown(self) -> None:
        self.engine.dispose()

    @property
    def month(self) -> str:
        return month_key(self.now, "UTC")

    @rule(
        agent=st.integers(0, 1),
        unit=st.sampled_from(sorted(PRICES)),
        quantity=st.integers(1, 4),
        key=st.integers(0, 40),
    )
    def charge(self, agent, unit, quantity, key):
        agent_id = self.agent_ids[agent]
        k = f"usage-{key}"
        body = (agent_id, unit, quantity)
        if k in self.model.keys and self.model.keys[k][0] != body:
            # The same key for another request is refused, and changes nothing.
            with pytest.raises(IdempotencyConflict):
                transaction(
                    self.sessions,
                    lambda s: charge(
                        s, self.account, agent_id, unit, quantity, idempotency_key=k,
                        request_hash=str(body), now=self.now,
                    ),
                )  # fmt: skip
            return
        result = transaction(
            self.sessions,
            lambda s: charge(
                s, self.account, agent_id, unit, quantity, idempotency_key=k,
                request_hash=str(body), now=self.now,
            ),
        )  # fmt: skip
        if k in self.model.keys:
            # A replay: the first answer, nothing changed (the invariants check balances).
            assert result.replayed
            assert (result.allowed, result.from_plan, result.from_wallet) == self.model.keys[k][1]
            return
        expected = self.model.charge(
            self.model.agents[agent_id], PRICES[unit] * quantity, self.month
        )
        assert (result.allowed, result.reason, result.from_plan, result.from_wallet) == expected
        self.model.keys[k] = (body, (result.allowed, result.from_plan, result.from_wallet))
        if result.allowed:
            self.model.charges.append(
                [result.entry_id, agent_id, expected[2], expected[3], 0, self.month]
            )

    @precondition(lambda self: any(c[2] + c[3] > c[4] for c in self.model.charges))
    @rule(data=st.data())
    def refund_part(self, data):
        open_charges = [c for c in self.model.charges if c[2] + c[3] > c[4]]
        c = data.draw(st.sampled_from(open_charges))
        amount = data.draw(st.integers(1, c[2] + c[3] - c[4]))
        n = len([x for x in self.model.charges if x[4]]) + data.draw(st.integers(0, 10_000))
        done = transaction(
            self.sessions,
            lambda s: refund(
                s, self.account, c[0], amount, key=f"refund-{c[0]}-{n}-{c[4]}", now=self.now
            ),
        )
        wallet_left = c[3] - min(c[3], c[4])  # refunds go to the wallet part first
        to_wallet = min(amount, wallet_left)
        assert (done.to_wallet, done.to_plan) == (to_wallet, amount - to_wallet)
        self.model.wallet += to_wallet
        self.model.plan += amount - to_wallet
        c[4] += amount
        agent = self.model.agents[c[1]]
        if agent.month == c[5]:  # a refund of last month's charge leaves this month's spend
            agent.spend = max(0, agent.spend - amount)
        self.model.resume(self.month, ("wallet_empty", "plan_exhausted"))

    @rule(amount=st.integers(1, 60), key=st.integers(0, 10))
    def credit(self, amount, key):
        k = f"topup-{key}"
        if k in self.model.keys:
            amount = self.model.keys[k][1]
        result = transaction(
            self.sessions,
            lambda s: credit_wallet(s, self.account, credits(amount), key=k, now=self.now),
        )
        if k in self.model.keys:
            assert result.replayed
            return
        self.model.keys[k] = ("topup", amount)
        self.model.wallet += credits(amount)
        self.model.resume(self.month, ("wallet_empty",))

    @rule()
    def renew(self):
        due = transaction(self.sessions, lambda s: balance(s, self.account).next_renewal_at)
        self.now = due + timedelta(minutes=1)
        done = transaction(self.sessions, lambda s: renew_due(s, self.account, now=self.now))
        assert len(done) == 1
        self.model.plan = PLAN
        self.model.resume(self.month, ("plan_exhausted", "wallet_empty"))

    @rule(
        agent=st.integers(0, 1),
        behaviour=st.sampled_from(["stop", "use_balance"]),
        limit=st.none() | st.integers(1, 80),
    )
    def settings(self, agent, behaviour, limit):
        agent_id = self.agent_ids[agent]
        transaction(
            self.sessions,
            lambda s: update_agent(
                s, self.account, agent_id, behaviour=behaviour,
                monthly_limit=None if limit is None else credits(limit), now=self.now,
            ),
        )  # fmt: skip
        a = self.model.agents[agent_id]
        new = (behaviour, None if limit is None else credits(limit))
        changed = (a.behaviour, a.limit) != new
        a.behaviour, a.limit = new
        if changed:  # saved as it was, nothing clears the reason it stopped for (rule 6)
            self.model.resume(
                self.month, ("plan_exhausted", "wallet_empty", "monthly_limit"), only=a
            )

    @invariant()
    def balances_match_the_model_and_the_postings(self):
        def read(s):
            acc = s.get(Account, self.account)
            bad = s.execute(
                select(func.count()).where(
                    (Transfer.amount <= 0) | (Transfer.debit_book == Transfer.credit_book)
                )
            ).scalar_one()
            return (
                acc.plan_balance,
                acc.wallet_balance,
                verify(s),
                bad,
                balance(s, self.account, now=self.now),
            )

        plan, wallet, mismatches, bad_transfers, view = transaction(self.sessions, read)
        assert mismatches == [] and bad_transfers == 0
        assert plan >= 0 and wallet >= 0
        assert (plan, wallet) == (self.model.plan, self.model.wallet)
        for a in view.agents:
            m = self.model.agents[a.id]
            assert (a.status, a.stop_reason) == ("stopped" if m.reason else "active", m.reason), (
                a.name
            )


NEW_DATABASE: Callable[[], str]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_ledger_state_machine(database, request, tmp_path_factory):
    """Each example gets a fresh migrated database: a copied SQLite file, or a PostgreSQL
    database cloned from the migrated template."""
    global NEW_DATABASE
    NEW_DATABASE = database_factory(database, request, tmp_path_factory)
    default = "40" if database == "sqlite" else "15"
    examples = int(os.environ.get("LEDGER_PROPERTY_EXAMPLES", default))
    LedgerMachine.TestCase.settings = settings(
        max_examples=examples,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    LedgerMachine.TestCase().runTest()
