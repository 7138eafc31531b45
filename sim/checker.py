"""The invariants checked after every step, from the brief's rules.

Each step's committed facts are read back (`sim.observe`) and replayed, in commit order,
through the reference model (`sim.model`):

- **balances equal postings, never negative**: the cached plan and wallet of every account
  equal the running sum of its transfers and the model's balances;
- **no usage beyond what the allowed sources covered**: each charge is decided by the model
  on its own and must agree (taken or refused, why, how much from the plan and from the
  wallet); a wallet is never charged for a `stop` agent, nor a plan past an agent's limit;
- **agent statuses agree with the model** (and their month spend);
- **alerts once per crossing**: the alerts each step wrote are exactly those the model says
  its changes crossed, no more (an alert re-armed early fires twice), no fewer;
- **each renewal once per cycle**: the next cycle by the calendar, not before its local
  midnight, never twice, and not left undone once the renewals job has run;
- **a replayed request answers what it answered first**, and each answer a runtime got
  matches what the ledger recorded;
- **settings change only when someone changes them.**

Payments and recharges are checked against Stripe in `sim.money`; Slack posts in
`sim.delivery`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sim.actors import Answer, CallEnded, World
from sim.model import AccountModel, AgentModel, Alert, Violation, month_of
from sim.observe import RECHARGE_SETTINGS, SETTINGS, EntryRow, Look, OutboxRow
from sim.system import System

#: Alert kinds the account model predicts (recharge alerts are `sim.money`'s).
MODEL_ALERTS = ("plan_low", "plan_exhausted", "wallet_low", "limit_80", "limit_100",
                "agent_stopped", "agent_resumed", "cycle_renewed", "topup_received",
                "refund_shortfall")  # fmt: skip
_ZERO_DECIMAL = {"JPY", "KRW"}


def credits_for(minor: int, currency: str, per_unit: int) -> int:
    """Milli-credits that `minor` units of money buy (rounded down)."""
    return minor * per_unit * 1000 // (1 if currency.upper() in _ZERO_DECIMAL else 100)


def signature(row: OutboxRow) -> Alert:
    """What tells an alert apart, as the model predicts it."""
    kind = row.kind.removeprefix("alert.")
    p = row.payload
    if kind in ("limit_80", "limit_100"):
        return (kind, p.get("agent_id"))
    if kind == "agent_stopped":
        return (kind, p.get("agent_id"), p.get("reason"))
    if kind == "agent_resumed":
        return (kind, p.get("agent_id"), p.get("cause"))
    if kind == "cycle_renewed":
        return (kind, p.get("cycle_start"))
    return (kind,)


@dataclass(frozen=True)
class Executed:
    """One thing the simulation did, as the checker needs to know it."""

    at: datetime
    label: str
    kind: str
    crashed: bool = False
    answers: tuple[Any, ...] = ()
    job_ok: bool = True


class Checker:
    def __init__(self, system: System, world: World) -> None:
        self.system = system
        self.stripe = system.stripe
        self.world = world
        #: Credits each Stripe charge put in a wallet, and how much of it was refunded.
        self.payment_credits: dict[str, int] = {}
        self.refunded: dict[str, int] = {}
        self.model: dict[int, AccountModel] = {}
        self.last_entry = 0
        self.last_message = 0
        self.last_recharge = 0
        self.since = system.clock.now
        #: Running sums of transfers per (account, book): `ledger verify`, a step at a time.
        self.books: Counter[tuple[int, str]] = Counter()
        #: Each usage entry's decision: (refused reason, from plan, from wallet).
        self.decisions: dict[int, tuple[str | None, int, int]] = {}
        self.entry_month: dict[int, str] = {}
        self.accounts: dict[int, dict[str, Any]] = {}
        self.look = Look()
        self.counts: Counter[str] = Counter()

    # --- the start ------------------------------------------------------------------------

    def start(self) -> None:
        """Take the state the setup left as the model's starting point."""
        look = self._read()
        for entry in look.entries:
            self._sum(entry)
        for account_id, row in look.accounts.items():
            model = AccountModel(
                id=account_id, tz=row["timezone"], anchor=row["cycle_anchor_day"],
                plan_per_cycle=row["plan_credits_per_cycle"], plan_low_percent=row["plan_low_percent"],
                wallet_low=row["wallet_low_credits"], plan=row["plan_balance"],
                wallet=row["wallet_balance"], grant=row["plan_grant"],
                cycle_start=row["cycle_start"], exhausted_alerted=row["plan_exhausted_alerted"],
            )  # fmt: skip
            for agent_id, a in look.agents.items():
                if a["account_id"] == account_id:
                    model.agents[agent_id] = AgentModel(
                        agent_id, a["name"], a["behaviour"], a["monthly_limit"], a["month"],
                        a["month_spend"], a["status"], a["stop_reason"],
                    )  # fmt: skip
            self.model[account_id] = model
        self.accounts = look.accounts
        self.look = look

    def _read(self) -> Look:
        found = self.system.reader.look(
            self.last_entry, self.last_message, self.last_recharge, self.since
        )
        if found.entries:
            self.last_entry = found.entries[-1].id
        if found.outbox:
            self.last_message = found.outbox[-1].id
        if found.recharges:
            self.last_recharge = max(self.last_recharge, *found.recharges)
        return found

    def _sum(self, entry: EntryRow) -> None:
        for debit, credit, amount in entry.moves:
            self.books[(entry.account_id, debit)] -= amount
            self.books[(entry.account_id, credit)] += amount

    # --- after each step ------------------------------------------------------------------

    def after(self, done: Executed) -> Look:
        """Check everything the step committed; raises Violation. Returns what was read."""
        self.since = done.at
        look = self._read()
        expected: dict[int, list[Alert]] = {a: [] for a in self.model}
        for entry in look.entries:
            self._sum(entry)
            expected[entry.account_id] += self._replay(entry, look)
        for account_id, model in self.model.items():
            expected[account_id] += self._settings(model, look, done)
        if done.kind == "job:month_rollover" and done.job_ok:
            for account_id, model in self.model.items():
                expected[account_id] += self._rollover(model, look, done.at)
        self._alerts(expected, look.outbox)
        touched = {e.account_id for e in look.entries} | {m.account_id for m in look.outbox}
        touched |= {a for a, row in look.accounts.items() if row != self.accounts[a]}
        touched |= {
            row["account_id"] for a, row in look.agents.items() if row != self.look.agents.get(a)
        }
        self._state(look, done, touched)
        self._answers(done)
        if done.kind == "job:renewals" and done.job_ok and not done.crashed:
            self._renewals_done(done.at)
        self.accounts = look.accounts
        self.look = look
        return look

    def _replay(self, entry: EntryRow, look: Look) -> list[Alert]:
        model = self.model[entry.account_id]
        self.counts[entry.kind] += 1
        if entry.kind == "usage":
            return self._usage(model, entry)
        if entry.kind == "refund":
            to_plan, to_wallet = entry.moved(credit="plan"), entry.moved(credit="wallet")
            charged_in = self.entry_month.get(entry.refund_of or 0, "")
            return model.refund(entry.agent_id, to_plan, to_wallet, charged_in, entry.at)
        if entry.kind == "renewal":
            # The cycle as the renewal names it (its memo; the key is the ledger's business).
            start = date.fromisoformat((entry.memo or "").removeprefix("cycle starting "))
            expired, granted = entry.moved("plan", "expired"), entry.moved("grants", "plan")
            return model.renew(start, expired, granted, entry.at)
        if entry.kind == "topup":
            return self._topup(model, entry)
        if entry.kind == "adjustment":
            model.wallet += entry.moved("adjustments", "wallet") - entry.moved(
                "wallet", "adjustments"
            )
            return []
        raise Violation("known entry kinds", f"entry {entry.id} has kind {entry.kind!r}")

    def _topup(self, model: AccountModel, entry: EntryRow) -> list[Alert]:
        """A payment credited, or a Stripe refund taken back: what the wallet still holds of
        it, never more; the rest is a shortfall, alerted."""
        key = entry.key or ""
        credited = entry.moved("topups", "wallet")
        if key.startswith("stripe:"):
            charge = self.stripe.charge_of(key.removeprefix("stripe:"))
            if charge is not None:
                self.payment_credits[charge["id"]] = credited
            alerts = model.credit_wallet(credited, entry.at)
            source = self._source(key)
            return alerts if source == "auto_recharge" else [*alerts, ("topup_received",)]
        charge_id, total = key.split(":")[1], int(key.split(":")[2])
        charge = self.stripe.charges[charge_id]
        account = self.accounts[model.id]
        price = account["currency"], account["credits_per_unit"]
        paid = self.payment_credits.get(charge_id, 0)
        previous = self.refunded.get(charge_id, 0)
        due = min(paid, credits_for(total, *price)) - min(paid, credits_for(previous, *price))
        want = min(due, model.wallet)
        taken = entry.moved("wallet", "topups")
        if taken != want:
            raise Violation("refunds taken back once",
                            f"entry {entry.id}: a refund of {total} (after {previous}) of "
                            f"{charge_id} took {taken}; {due} was due and the wallet held {model.wallet}")  # fmt: skip
        self.refunded[charge_id] = total
        model.wallet -= taken
        return [("refund_shortfall",)] if due > taken else []

    def _source(self, key: str) -> str | None:
        """Where the payment a wallet credit is keyed on came from ('auto_recharge', ...)."""
        ref = key.removeprefix("stripe:")
        for topup in self.system.reader.topups():
            if ref in (topup["payment_intent_id"], topup["checkout_session_id"]):
                return topup["source"]
        return None

    def _usage(self, model: AccountModel, entry: EntryRow) -> list[Alert]:
        agent_id = entry.agent_id or 0
        agent = model.agents[agent_id]
        if entry.unit == "message":
            rate = self.accounts[model.id]["message_rate"]
            if entry.amount != rate * (entry.quantity or 0):
                raise Violation("usage priced by the account's rates",
                                f"entry {entry.id}: {entry.quantity} message(s) cost {entry.amount}, "
                                f"the rate is {rate}")  # fmt: skip
        behaviour, limit = agent.behaviour, agent.limit
        spend_before = agent.spend_in(month_of(entry.at, model.tz))
        reason, from_plan, from_wallet, alerts = model.charge(agent_id, entry.amount, entry.at)
        took_plan, took_wallet = entry.moved("plan", "usage"), entry.moved("wallet", "usage")
        if took_wallet and behaviour != "use_balance":
            raise Violation("no usage beyond the allowed sources",
                            f"entry {entry.id}: agent {agent_id} is set to stop but paid "
                            f"{took_wallet} from the wallet")  # fmt: skip
        if took_plan and limit is not None and spend_before + took_plan > limit:
            raise Violation("no usage beyond the allowed sources",
                            f"entry {entry.id}: agent {agent_id} took {took_plan} plan credits with "
                            f"{spend_before} of its {limit} limit spent")  # fmt: skip
        if (entry.refused, took_plan, took_wallet) != (reason, from_plan, from_wallet):
            raise Violation(
                "charges decided as the rules say",
                f"entry {entry.id} (agent {agent_id}, {entry.amount} at {entry.at:%Y-%m-%d %H:%M}): "
                f"the ledger {_decision(entry.refused, took_plan, took_wallet)}, the rules "
                f"{_decision(reason, from_plan, from_wallet)}",
            )
        self.decisions[entry.id] = (reason, from_plan, from_wallet)
        self.entry_month[entry.id] = month_of(entry.at, model.tz)
        return alerts

    def _settings(self, model: AccountModel, look: Look, done: Executed) -> list[Alert]:
        row, before = look.accounts[model.id], self.accounts[model.id]
        for names, allowed in ((SETTINGS, "step:account_settings"),
                               (RECHARGE_SETTINGS, "step:auto_recharge")):  # fmt: skip
            changed = [n for n in names if row[n] != before[n]]
            if changed and done.kind != allowed:
                raise Violation("settings change only when someone changes them",
                                f"account {model.id}: {', '.join(changed)} changed during {done.label}")  # fmt: skip
        model.plan_per_cycle = row["plan_credits_per_cycle"]
        model.plan_low_percent = row["plan_low_percent"]
        model.wallet_low = row["wallet_low_credits"]
        alerts: list[Alert] = []
        for agent_id, agent in model.agents.items():
            db = look.agents[agent_id]
            if (db["behaviour"], db["monthly_limit"]) != (agent.behaviour, agent.limit):
                if done.kind != "step:agent_settings":
                    raise Violation("settings change only when someone changes them",
                                    f"agent {agent_id} settings changed during {done.label}")  # fmt: skip
                alerts += model.change_agent(
                    agent_id, db["behaviour"], db["monthly_limit"], done.at
                )
        return alerts

    def _rollover(self, model: AccountModel, look: Look, at: datetime) -> list[Alert]:
        month = month_of(at, model.tz)
        rolled = all(look.agents[a]["month"] >= month for a in model.agents)
        return model.new_month(at) if rolled else []

    def _alerts(self, expected: dict[int, list[Alert]], written: list[OutboxRow]) -> None:
        wrote: dict[int, list[Alert]] = {a: [] for a in self.model}
        for row in written:
            if row.kind.removeprefix("alert.") in MODEL_ALERTS and row.account_id in wrote:
                wrote[row.account_id].append(signature(row))
        for account_id, want in expected.items():
            got = wrote[account_id]
            if Counter(got) != Counter(want):
                extra = list((Counter(got) - Counter(want)).elements())
                missing = list((Counter(want) - Counter(got)).elements())
                raise Violation("alerts once per crossing",
                                f"account {account_id}: written but not crossed {extra}; "
                                f"crossed but not written {missing}")  # fmt: skip
            self.counts["alerts"] += len(got)

    def _state(self, look: Look, done: Executed, touched: set[int | None]) -> None:
        """Balances, cycle and agents of the accounts the step touched (the others did not
        change, and what they must be did not either)."""
        for account_id, model in self.model.items():
            if account_id not in touched:
                continue
            row = look.accounts[account_id]
            for book, column, mine in (("plan", "plan_balance", model.plan),
                                       ("wallet", "wallet_balance", model.wallet)):  # fmt: skip
                posted = self.books[(account_id, book)]
                if row[column] != posted:
                    raise Violation("balances equal postings",
                                    f"account {account_id}: {book} is {row[column]}, its postings sum to {posted}")  # fmt: skip
                if row[column] < 0:
                    raise Violation(
                        "balances never negative", f"account {account_id}: {book} {row[column]}"
                    )
                if row[column] != mine:
                    raise Violation("balances agree with the model",
                                    f"account {account_id}: {book} is {row[column]}, the rules say {mine}")  # fmt: skip
            if row["cycle_start"] != model.cycle_start:
                raise Violation("renewal once per cycle",
                                f"account {account_id} is in the cycle of {row['cycle_start']}, "
                                f"the rules say {model.cycle_start}")  # fmt: skip
            if row["plan_exhausted_alerted"] != model.exhausted_alerted:
                raise Violation("alerts once per crossing",
                                f"account {account_id}: 'plan credits exhausted' "
                                + ("fired this cycle but is not remembered: it will fire again"
                                   if model.exhausted_alerted else
                                   "is remembered as fired, but did not fire this cycle"))  # fmt: skip
            if row["next_renewal_at"] != model.next_renewal():
                raise Violation("renewal once per cycle",
                                f"account {account_id}: next renewal {row['next_renewal_at']:%Y-%m-%d %H:%M} UTC, "
                                f"the cycle after {model.cycle_start} starts at {model.next_renewal():%Y-%m-%d %H:%M} UTC")  # fmt: skip
            month = month_of(done.at, model.tz)
            for agent_id, agent in model.agents.items():
                db = look.agents[agent_id]
                if (db["status"], db["stop_reason"]) != (agent.status, agent.reason):
                    raise Violation("agent statuses agree with the model",
                                    f"agent {agent_id} of account {account_id} is {db['status']}"
                                    f"({db['stop_reason']}), the rules say {agent.status}({agent.reason})")  # fmt: skip
                spend = db["month_spend"] if db["month"] == month else 0
                if db["month"] <= month and spend != agent.spend_in(month):
                    raise Violation("month spend counts every credit of the month",
                                    f"agent {agent_id}: {spend} spent in {month}, the rules say {agent.spend_in(month)}")  # fmt: skip

    def _answers(self, done: Executed) -> None:
        for answer in done.answers:
            if isinstance(answer, Answer):
                first = self.decisions.get(answer.charge.entry_id)
                got = (answer.charge.reason, answer.charge.from_plan, answer.charge.from_wallet)
                if first is None or got != first or answer.charge.allowed != (first[0] is None):
                    raise Violation("a replayed request answers what it answered first",
                                    f"{answer.key}: answered {_decision(*got)}"
                                    f"{' (replayed)' if answer.charge.replayed else ''}, the ledger recorded "
                                    f"{_decision(*first) if first else 'nothing'}")  # fmt: skip
            elif isinstance(answer, CallEnded):
                self._call_end(answer)

    def _call_end(self, end: CallEnded) -> None:
        call = self.system.reader.call(end.call_id)
        rate, minutes = call["minute_rate"], call["minutes_charged"]
        paid = rate * minutes
        used = -(-min(end.duration, minutes * 60) * rate // 60)
        refund = max(0, paid - used) if call["per_second"] else 0
        if refund > rate:  # a call never pays for more minutes than it lasted
            raise Violation(
                "per-second calls refund the unused part of the last minute",
                f"call {end.call_id}: {minutes} minute(s) paid for {end.duration}s",
            )
        if (end.refunded, end.charged) != (refund, paid - refund):
            raise Violation("per-second calls refund the unused part of the last minute",
                            f"call {end.call_id}: {minutes} minute(s) at {rate}, {end.duration}s, "
                            f"refunded {end.refunded} (the rules say {refund})")  # fmt: skip

    def _renewals_done(self, at: datetime) -> None:
        for account_id, model in self.model.items():
            if model.next_renewal() <= at:
                raise Violation("renewal once per cycle",
                                f"account {account_id}: the renewals job ran at {at:%Y-%m-%d %H:%M} UTC "
                                f"and left the renewal due {model.next_renewal():%Y-%m-%d %H:%M} UTC undone")  # fmt: skip


def _decision(reason: str | None, from_plan: int, from_wallet: int) -> str:
    if reason is not None:
        return f"refused it ({reason})"
    return f"took {from_plan} from the plan and {from_wallet} from the wallet"
