"""A hypothesis state machine drives the ledger with random charges, refunds, wallet
credits, renewals, settings changes, account budgets, recharges to a target balance and
replays, next to a simple model of the rules.

After every step: balances equal the model and their postings, nothing is negative, every
transfer is one-sided-free, a replayed key changed nothing, and the account's month spend
(what its budget counts) is the model's and its agents' own.

Longer than most modules on purpose: the model and the machine's rules are one thing, read
side by side.
"""

from __future__ import annotations

import itertools
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
from ledger.auto_recharge import update_auto_recharge
from ledger.budget import set_budget
from ledger.charges import charge, refund
from ledger.cycles import month_key
from ledger.db import make_engine, make_session_factory, transaction
from ledger.errors import IdempotencyConflict
from ledger.models import Account, Agent, Transfer
from ledger.recharges import recharge_succeeded, request_recharge
from ledger.renewals import renew_due
from ledger.stripe_records import save_card
from ledger.units import credits
from ledger.verify import verify
from ledger.wallet import credit_wallet
from tests.support.factories import NOW
from tests.support.property_databases import database_factory

PLAN = credits(100)
PRICES = {"message": credits(1), "call_minute": credits(10)}
#: Top-up limits and monthly recharge cap of the machine's account, in cents (1 cent buys
#: 1 credit at the default price): small enough for recharges to matter next to charges.
TOPUP_MIN, TOPUP_MAX, RECHARGE_CAP = 100, 5_000, 3_000


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
    budget: int | None = None
    account_month: str = ""
    account_spend: int = 0
    #: Money auto-recharged per month (the cap counts it).
    recharged: dict[str, int] = field(default_factory=dict)
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

    def budget_left(self, month: str) -> int | None:
        spent = self.account_spend if self.account_month == month else 0
        return None if self.budget is None else max(0, self.budget - spent)

    @staticmethod
    def short(a: ModelAgent) -> str:
        """What an agent lacks when it cannot pay even a milli-credit."""
        if a.behaviour == "use_balance":
            return "wallet_empty"
        return "monthly_limit" if a.limit is not None and a.spend >= a.limit else "plan_exhausted"

    def resume(self, month: str, reasons: tuple[str, ...], only: ModelAgent | None = None) -> None:
        left = self.budget_left(month)
        full = left is not None and left <= 0
        for a in [only] if only else self.agents.values():
            if a.reason in reasons:
                self.roll(a, month)
                if a.reason == "account_budget" and full:
                    continue
                if self.room(a) > 0:
                    a.reason = "account_budget" if full else None
                elif a.reason == "account_budget":
                    a.reason = self.short(a)

    def stop_all(self) -> None:
        for a in self.agents.values():
            if a.reason is None:
                a.reason = "account_budget"

    def set_budget(self, budget: int | None, month: str) -> None:
        was = self.budget_left(month)
        self.budget = budget
        left = self.budget_left(month)
        if left is not None and left <= 0:
            if not (was is not None and was <= 0):
                self.stop_all()
        else:
            self.resume(month, ("account_budget",))

    def charge(self, a: ModelAgent, price: int, month: str) -> tuple[bool, str | None, int, int]:
        new_month = self.roll(a, month)
        fresh = new_month or self.account_month != month or self.budget is None
        if a.reason and not (
            (a.reason == "monthly_limit" and new_month) or (a.reason == "account_budget" and fresh)
        ):
            return False, a.reason, 0, 0
        left = self.budget_left(month)
        if left is not None and price > left:
            a.reason = "account_budget"
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
        if self.account_month != month:
            self.account_month, self.account_spend = month, 0
        self.account_spend += price
        if left is not None and price == left:
            self.stop_all()
        elif self.room(a) == 0:
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
                s,
                AccountSettings(
                    name="Prop", plan_credits=PLAN, cycle_anchor_day=1,
                    topup_min_minor=TOPUP_MIN, topup_max_minor=TOPUP_MAX,
                ),
                now=self.now,
            )  # fmt: skip
            save_card(s, acc.id, customer_id="cus_prop", payment_method_id="pm_prop",
                      brand="visa", last4="4242", now=self.now)  # fmt: skip
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
        self.payments = itertools.count()

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
        if self.model.account_month == c[5]:
            self.model.account_spend = max(0, self.model.account_spend - amount)
        self.model.resume(self.month, ("wallet_empty", "plan_exhausted", "account_budget"))

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
        self.model.resume(self.month, ("wallet_empty", "account_budget"))

    @rule()
    def renew(self):
        due = transaction(self.sessions, lambda s: balance(s, self.account).next_renewal_at)
        self.now = due + timedelta(minutes=1)
        done = transaction(self.sessions, lambda s: renew_due(s, self.account, now=self.now))
        assert len(done) == 1
        self.model.plan = PLAN
        self.model.resume(self.month, ("plan_exhausted", "wallet_empty", "account_budget"))

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
                self.month, ("plan_exhausted", "wallet_empty", "monthly_limit", "account_budget"),
                only=a,
            )  # fmt: skip

    @rule(budget=st.none() | st.integers(1, 150))
    def budget(self, budget):
        amount = None if budget is None else credits(budget)
        view = transaction(
            self.sessions, lambda s: set_budget(s, self.account, amount, now=self.now)
        )
        self.model.set_budget(amount, self.month)
        assert view.month_spend == (
            self.model.account_spend if self.model.account_month == self.month else 0
        )

    @rule(threshold=st.integers(1, 120), above=st.integers(1, 200))
    def recharge_to_target(self, threshold, above):
        """Top the wallet back up to a target when it is under the threshold (money in
        cents, 1 cent per credit): the attempt is sized now, within the top-up limits and
        what the monthly cap still allows, and credited once it succeeds."""
        target = threshold + above

        def settings_and_request(s):
            update_auto_recharge(
                s, self.account, enabled=True, threshold_minor=threshold, amount_minor=0,
                monthly_cap_minor=RECHARGE_CAP, mode="target", target_minor=target, now=self.now,
            )  # fmt: skip
            return request_recharge(s, self.account, trigger="sweep", now=self.now)

        request = transaction(self.sessions, settings_and_request)
        wallet = self.model.wallet
        done = self.model.recharged.get(self.month, 0)
        if wallet >= credits(threshold):
            assert request.job is None and "threshold" in (request.skipped or "")
            return
        short = credits(target) - wallet
        amount = min(TOPUP_MAX, max(TOPUP_MIN, -(-short // 1000)))
        if amount > RECHARGE_CAP - done:
            amount = RECHARGE_CAP - done if RECHARGE_CAP - done >= TOPUP_MIN else None
        if amount is None:
            assert request.job is None and "cap" in (request.skipped or "")
            return
        assert request.job is not None and request.job.amount_minor == amount
        transaction(
            self.sessions,
            lambda s: recharge_succeeded(
                s, request.job.recharge_id, payment_intent_id=f"pi_{next(self.payments)}",
                amount_minor=amount, currency="usd", now=self.now,
            ),
        )  # fmt: skip
        self.model.recharged[self.month] = done + amount
        self.model.wallet += credits(amount)
        if amount < TOPUP_MAX and amount < RECHARGE_CAP - done:
            assert self.model.wallet >= credits(target), "one recharge reaches the target"
        self.model.resume(self.month, ("wallet_empty", "account_budget"))

    @invariant()
    def balances_match_the_model_and_the_postings(self):
        def read(s):
            acc = s.get(Account, self.account)
            # This month's spend, as the account counts it for its budget and as its agents do.
            self.spends = (
                acc.account_month_spend if acc.account_month == self.month else 0,
                sum(
                    s.execute(
                        select(Agent.month_spend).where(
                            Agent.account_id == self.account, Agent.month == self.month
                        )
                    ).scalars()
                ),
            )
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
        account_spend, agents_spend = self.spends
        assert account_spend == agents_spend, "the budget counts what the agents spent"
        assert account_spend == (
            self.model.account_spend if self.model.account_month == self.month else 0
        )
        for a in view.agents:
            m = self.model.agents[a.id]
            assert (a.status, a.stop_reason) == ("stopped" if m.reason else "active", m.reason), (
                a.name
            )


NEW_DATABASE: Callable[[], str]


@pytest.mark.slow
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
