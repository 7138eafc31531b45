"""The money invariants, checked against what Stripe holds (`sim.fake_stripe`):

- **every Stripe payment credited exactly once, nothing credited without one**: each
  wallet credit names a payment Stripe took, in the right amount, and no payment is
  credited twice (not even once by its Checkout Session and again by its PaymentIntent);
  once the run settles, every payment Stripe took is credited;
- **refunds taken back once**: each refund Stripe made comes out of the wallet once (what
  the wallet no longer held is recorded as a shortfall);
- **at most one recharge in flight**: one pending attempt per account, and Stripe never
  charged one attempt twice;
- **the cap respected**: what auto-recharge took in a month never passes the monthly cap;
- **three failures pause**: the third failure in a row pauses auto-recharge, nothing else
  does, and a paused account starts no attempt;
- **every attempt's outcome recorded and alerted**, none left pending once things settle.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from sim.checker import Executed, credits_for
from sim.fake_stripe import FakeStripe
from sim.model import Violation, month_of
from sim.observe import Look


class MoneyChecker:
    def __init__(self, stripe: FakeStripe) -> None:
        self.stripe = stripe
        #: Stripe charges credited, and by which wallet entry.
        self.credited: dict[str, int] = {}
        self.recharges: dict[int, dict[str, Any]] = {}
        self.paused: dict[int, bool] = {}
        self.failures_in_a_row: Counter[int] = Counter()
        #: The largest monthly cap each account had in each month.
        self.caps: dict[tuple[int, str], int] = {}
        self.counts: Counter[str] = Counter()
        self._stripe_seen: tuple[int, int] = (-1, -1)

    def start(self, look: Look) -> None:
        self.paused = {a: row["auto_recharge_paused"] for a, row in look.accounts.items()}

    # --- after each step ------------------------------------------------------------------

    def after(self, done: Executed, look: Look, before: dict[int, dict[str, Any]]) -> None:
        for account_id, row in look.accounts.items():
            key = (account_id, month_of(done.at, row["timezone"]))
            self.caps[key] = max(self.caps.get(key, 0), row["auto_recharge_monthly_cap_minor"])
        self._credits(look)
        changed = {i: r for i, r in look.recharges.items()}
        expected = self._recharges(done, changed, look, before)
        self._recharge_alerts(expected, look)
        self._in_flight(look)

    def _credits(self, look: Look) -> None:
        for entry in look.entries:
            if entry.kind != "topup":
                continue
            credited = entry.moved("topups", "wallet")
            ref = (entry.key or "").removeprefix("stripe:")
            if credited:
                intent = self._intent_of(ref)
                if intent is None or intent["status"] != "succeeded":
                    raise Violation("nothing credited without a payment",
                                    f"entry {entry.id} credited {credited} for {ref}, which Stripe "
                                    f"{'does not know' if intent is None else 'reports ' + intent['status']}")  # fmt: skip
                charge = intent["latest_charge"]
                if charge in self.credited:
                    raise Violation("every payment credited exactly once",
                                    f"Stripe charge {charge} ({intent['id']}) credited by entry "
                                    f"{self.credited[charge]} and again by entry {entry.id}")  # fmt: skip
                account = look.accounts[entry.account_id]
                want = credits_for(
                    intent["amount_received"], account["currency"], account["credits_per_unit"]
                )
                if credited != want:
                    raise Violation("every payment credited exactly once",
                                    f"entry {entry.id} credited {credited} for {intent['id']}, "
                                    f"which buys {want}")  # fmt: skip
                self.credited[charge] = entry.id
                self.counts["payments credited"] += 1
            elif (entry.key or "").startswith("stripe-refund:"):
                charge_id, total = (entry.key or "").split(":")[1:3]
                charge = self.stripe.charges.get(charge_id)
                if charge is None or charge["amount_refunded"] < int(total):
                    raise Violation(
                        "refunds taken back once",
                        f"entry {entry.id} takes back a refund Stripe never made ({entry.key})",
                    )
                self.counts["refunds taken back"] += 1

    def _intent_of(self, ref: str) -> dict[str, Any] | None:
        if ref.startswith("cs_"):
            session = self.stripe.sessions.get(ref)
            if session is None or session["payment_status"] != "paid":
                return None
            ref = session["payment_intent"]
        return self.stripe.intents.get(ref)

    def _recharges(self, done: Executed, changed: dict[int, dict[str, Any]], look: Look,
                   before: dict[int, dict[str, Any]]) -> list[tuple[object, ...]]:  # fmt: skip
        expected: list[tuple[object, ...]] = []
        for rid in sorted(changed):
            now, was = changed[rid], self.recharges.get(rid)
            account_id = now["account_id"]
            if was is None:
                self.recharges[rid] = dict(now)
                self._new_attempt(rid, now, before)
            status_was = None if was is None else was["status"]
            if now["status"] != status_was and now["status"] != "pending":
                expected.append((f"recharge_{now['status']}", rid))
                self._outcome(rid, now)
                if now["status"] == "failed":
                    self.failures_in_a_row[account_id] += 1
                else:
                    self.failures_in_a_row[account_id] = 0
            if now["paused_auto_recharge"] and not (was or {}).get("paused_auto_recharge"):
                expected.append(("auto_recharge_paused", rid))
            self.recharges[rid] = dict(now)
        for account_id, row in look.accounts.items():
            paused, was_paused = row["auto_recharge_paused"], self.paused.get(account_id, False)
            if paused and not was_paused:
                if self.failures_in_a_row[account_id] < 3:
                    raise Violation("three failures pause",
                                    f"account {account_id} paused auto-recharge after "
                                    f"{self.failures_in_a_row[account_id]} failure(s) in a row")  # fmt: skip
                self.failures_in_a_row[account_id] = 0
            elif not paused and was_paused and done.kind != "step:auto_recharge":
                raise Violation(
                    "three failures pause",
                    f"account {account_id} un-paused auto-recharge during {done.label}",
                )
            elif (
                not paused
                and self.failures_in_a_row[account_id] >= 3
                and row["auto_recharge_enabled"]
            ):
                raise Violation("three failures pause",
                                f"account {account_id}: {self.failures_in_a_row[account_id]} failures "
                                "in a row and auto-recharge is not paused")  # fmt: skip
            self.paused[account_id] = paused
        return expected

    def _new_attempt(
        self, rid: int, row: dict[str, Any], before: dict[int, dict[str, Any]]
    ) -> None:
        account_id = row["account_id"]
        settings = before[account_id]
        self.counts["recharge attempts"] += 1
        if not settings["auto_recharge_enabled"] or settings["auto_recharge_paused"]:
            raise Violation("three failures pause",
                            f"recharge {rid} started for account {account_id} with auto-recharge "
                            f"{'paused' if settings['auto_recharge_paused'] else 'off'}")  # fmt: skip
        tz = settings["timezone"]
        month = month_of(row["created_at"], tz)
        spent = sum(r["amount_minor"] for r in self.recharges.values()
                    if r["account_id"] == account_id and r["status"] in ("pending", "succeeded")
                    and month_of(r["created_at"], tz) == month)  # fmt: skip
        cap = settings["auto_recharge_monthly_cap_minor"]
        if row["status"] != "failed" and spent > cap:
            raise Violation("the monthly cap respected",
                            f"recharge {rid} brings account {account_id}'s auto-recharges in {month} "
                            f"to {spent}, over its cap of {cap}")  # fmt: skip

    def _outcome(self, rid: int, row: dict[str, Any]) -> None:
        """The recorded outcome agrees with what Stripe says about the attempt."""
        intents = [i for i in self.stripe.intents.values()
                   if (i["metadata"] or {}).get("creditbot_recharge_id") == str(rid)]  # fmt: skip
        took = [i for i in intents if i["status"] == "succeeded"]
        if row["status"] == "succeeded" and row["payment_intent_id"] not in {i["id"] for i in took}:
            raise Violation(
                "every attempt's outcome recorded",
                f"recharge {rid} recorded as succeeded, Stripe took no money for it",
            )
        if row["status"] == "failed":
            if row["reason"] == "missing_payment_method" and intents:
                raise Violation(
                    "every attempt's outcome recorded",
                    f"recharge {rid} failed for a missing card, yet Stripe was asked to charge one",
                )
            if row["reason"] in ("card_declined", "authentication_required") and not intents:
                raise Violation(
                    "every attempt's outcome recorded",
                    f"recharge {rid} failed ({row['reason']}) without a Stripe answer",
                )
            if took:
                raise Violation(
                    "every attempt's outcome recorded",
                    f"recharge {rid} recorded as failed ({row['reason']}), Stripe took the money ({took[0]['id']})",
                )

    def _recharge_alerts(self, expected: list[tuple[object, ...]], look: Look) -> None:
        written: list[tuple[object, ...]] = []
        for row in look.outbox:
            kind = row.kind.removeprefix("alert.")
            if kind in ("recharge_succeeded", "recharge_failed", "auto_recharge_paused"):
                if row.payload.get("reason") == "monthly_cap_reached":
                    self.counts["cap alerts"] += 1
                    continue
                written.append((kind, row.payload.get("recharge_id")))
        if Counter(written) != Counter(expected):
            raise Violation(
                "every attempt's outcome recorded",
                f"recharge alerts written {sorted(written, key=str)}, outcomes {sorted(expected, key=str)}",
            )

    def _in_flight(self, look: Look) -> None:
        pending = Counter(
            r["account_id"] for r in self.recharges.values() if r["status"] == "pending"
        )
        for account_id, n in pending.items():
            if n > 1:
                raise Violation(
                    "at most one recharge in flight",
                    f"account {account_id} has {n} pending attempts",
                )
        stripe_state = (len(self.stripe.intents), len(self.stripe.events))
        if stripe_state == self._stripe_seen:
            return  # nothing new at Stripe: what it charged was checked already
        self._stripe_seen = stripe_state
        charged: dict[str, list[str]] = defaultdict(list)
        taken: Counter[tuple[int, str]] = Counter()
        for intent in self.stripe.intents.values():
            meta = intent["metadata"] or {}
            if meta.get("creditbot_kind") != "auto_recharge":
                continue
            if intent["status"] in ("succeeded", "processing"):
                charged[meta.get("creditbot_recharge_id", "")].append(intent["id"])
            if intent["status"] == "succeeded":
                account_id = int(meta["creditbot_account_id"])
                tz = look.accounts[account_id]["timezone"]
                month = month_of(datetime.fromtimestamp(intent["created"], UTC), tz)
                taken[(account_id, month)] += intent["amount_received"]
        for rid, intents in charged.items():
            if len(intents) > 1:
                raise Violation(
                    "at most one recharge in flight",
                    f"Stripe charged recharge {rid} {len(intents)} times: {', '.join(intents)}",
                )
        for (account_id, month), amount in taken.items():
            cap = self.caps.get((account_id, month), 0)
            if amount > cap:
                raise Violation(
                    "the monthly cap respected",
                    f"Stripe took {amount} in auto-recharges from account {account_id} in {month}, cap {cap}",
                )

    # --- once things settle ---------------------------------------------------------------

    def settled(self, topups: list[dict[str, Any]]) -> None:
        for intent in self.stripe.succeeded_payments():
            if self.stripe.account_of(intent) is None:
                continue
            if intent["latest_charge"] not in self.credited:
                raise Violation(
                    "every payment credited exactly once",
                    f"Stripe took {intent['amount_received']} ({intent['id']}, "
                    f"{(intent['metadata'] or {}).get('creditbot_kind')}) and it was never credited",
                )
        for charge in self.stripe.charges.values():
            if not charge["amount_refunded"] or charge["id"] not in self.credited:
                continue
            topup = next(
                (t for t in topups if t["payment_intent_id"] == charge["payment_intent"]), None
            )
            if topup is None or topup["refunded_minor"] != charge["amount_refunded"]:
                raise Violation("refunds taken back once",
                                f"Stripe refunded {charge['amount_refunded']} of {charge['id']}; the ledger took back "
                                f"{topup['refunded_minor'] if topup else 0}")  # fmt: skip
        stuck = [rid for rid, r in self.recharges.items() if r["status"] == "pending"]
        if stuck:
            raise Violation(
                "every attempt's outcome recorded",
                f"recharge attempt(s) {stuck} still pending once everything settled",
            )

    def never_started(self, accounts: dict[int, dict[str, Any]], cards: dict[int, str | None],
                      now: datetime) -> None:  # fmt: skip
        """Once things settle, no wallet sits under its threshold with auto-recharge on, a
        card that pays, room under the cap and no recent failure, waiting for a recharge
        that never starts (rule 9: none fails silently)."""
        for account_id, a in accounts.items():
            if not a["auto_recharge_enabled"] or a["auto_recharge_paused"]:
                continue
            threshold = credits_for(
                a["auto_recharge_threshold_minor"], a["currency"], a["credits_per_unit"]
            )
            card = cards.get(account_id)
            if (
                a["wallet_balance"] >= threshold
                or not card
                or self.stripe.card_behaviour(card) != "succeed"
            ):
                continue
            mine = [r for r in self.recharges.values() if r["account_id"] == account_id]
            month = month_of(now, a["timezone"])
            spent = sum(r["amount_minor"] for r in mine if r["status"] in ("pending", "succeeded")
                        and month_of(r["created_at"], a["timezone"]) == month)  # fmt: skip
            recent = [
                r
                for r in mine
                if r["finished_at"] and (now - r["finished_at"]).total_seconds() < 900
            ]
            if (
                spent + a["auto_recharge_amount_minor"] <= a["auto_recharge_monthly_cap_minor"]
                and not recent
            ):
                raise Violation("auto-recharge never fails silently",
                                f"account {account_id}: wallet {a['wallet_balance']} under its threshold "
                                f"{threshold}, a card that pays, room under the cap, and no recharge started")  # fmt: skip
