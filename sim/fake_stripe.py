"""An in-memory Stripe, faithful to what creditbot relies on: customers and their cards,
Checkout sessions (payment mode saving the card, setup mode), off-session PaymentIntents
confirmed at once (succeeded, declined, authentication required, or left processing and
settled later), charges and their refunds, and the events Stripe emits for each.

Objects are plain dicts shaped like Stripe's JSON. Ids are counters (deterministic). What
the Stripe API answers over HTTP, with idempotency keys and injected failures, is
`sim.stripe_http`; how the events reach creditbot's webhook is `sim.stripe_events`.

Card behaviours are the simulation's own: a card may `succeed`, `decline` (insufficient
funds), `need_auth` (off-session authentication required) or go `slow` (processing,
settled a few minutes later); the bank can change its mind about a card at any time.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

Obj = dict[str, Any]

#: How long a `slow` card's payment stays processing.
SETTLE_AFTER = timedelta(minutes=7)


class StripeRefusal(Exception):
    """What the API answers with an error status: `status` and Stripe's error object."""

    def __init__(self, status: int, error: Obj) -> None:
        super().__init__(error.get("message", ""))
        self.status = status
        self.error = error


def _not_found(kind: str, ident: str) -> StripeRefusal:
    return StripeRefusal(
        404,
        {"type": "invalid_request_error", "code": "resource_missing",
         "message": f"No such {kind}: '{ident}'"},
    )  # fmt: skip


@dataclass
class Timer:
    """Something Stripe does later by itself: settle a slow payment."""

    at: datetime
    what: str
    run: Callable[[], None]


@dataclass
class FakeStripe:
    now: Callable[[], datetime]
    customers: dict[str, Obj] = field(default_factory=dict)
    payment_methods: dict[str, Obj] = field(default_factory=dict)
    sessions: dict[str, Obj] = field(default_factory=dict)
    setup_intents: dict[str, Obj] = field(default_factory=dict)
    intents: dict[str, Obj] = field(default_factory=dict)
    charges: dict[str, Obj] = field(default_factory=dict)
    refunds: dict[str, Obj] = field(default_factory=dict)
    #: Events in the order Stripe emitted them (`sim.stripe_events` delivers them).
    events: list[Obj] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    #: How each card (payment method id) behaves when charged.
    behaviour: dict[str, str] = field(default_factory=dict)
    _ids: dict[str, itertools.count] = field(default_factory=dict)

    # --- basics -------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        counter = self._ids.setdefault(prefix, itertools.count(1))
        return f"{prefix}_sim{next(counter):06d}"

    def timestamp(self) -> int:
        return int(self.now().timestamp())

    def emit(self, event_type: str, obj: Obj) -> None:
        self.events.append(
            {
                "id": self.new_id("evt"),
                "object": "event",
                "type": event_type,
                "created": self.timestamp(),
                "api_version": "2026-10-28.endive",
                "livemode": False,
                "data": {"object": _copy(obj)},
            }
        )

    def account_of(self, obj: Obj) -> int | None:
        value = (obj.get("metadata") or {}).get("creditbot_account_id")
        return int(value) if value and str(value).isdigit() else None

    # --- customers and cards --------------------------------------------------------------

    def create_customer(self, params: Obj) -> Obj:
        customer = {
            "id": self.new_id("cus"),
            "object": "customer",
            "name": params.get("name"),
            "metadata": dict(params.get("metadata") or {}),
            "invoice_settings": {"default_payment_method": None},
            "created": self.timestamp(),
        }
        self.customers[customer["id"]] = customer
        return customer

    def update_customer(self, customer_id: str, params: Obj) -> Obj:
        customer = self._get(self.customers, "customer", customer_id)
        default = (params.get("invoice_settings") or {}).get("default_payment_method")
        if default is not None:
            method = self._get(self.payment_methods, "payment_method", default)
            if method["customer"] != customer_id:
                raise StripeRefusal(400, {"type": "invalid_request_error",
                                          "message": "The payment method is not attached."})  # fmt: skip
            customer["invoice_settings"]["default_payment_method"] = default
        return customer

    def new_card(self, customer_id: str | None, last4: str) -> Obj:
        method = {
            "id": self.new_id("pm"),
            "object": "payment_method",
            "type": "card",
            "card": {"brand": "visa", "last4": last4, "exp_month": 12, "exp_year": 2040},
            "customer": customer_id,
            "created": self.timestamp(),
        }
        self.payment_methods[method["id"]] = method
        return method

    def attach(self, method_id: str, params: Obj) -> Obj:
        method = self._get(self.payment_methods, "payment_method", method_id)
        customer_id = params.get("customer")
        self._get(self.customers, "customer", customer_id or "")
        if method["customer"] not in (None, customer_id):
            raise StripeRefusal(400, {"type": "invalid_request_error",
                                      "message": "The payment method belongs to another customer."})  # fmt: skip
        method["customer"] = customer_id
        return method

    def card_behaviour(self, method_id: str | None) -> str:
        return self.behaviour.get(method_id or "", "succeed")

    def cards_of(self, account_id: int) -> list[str]:
        """Ids of the cards attached to the account's customers."""
        customers = {c for c, obj in self.customers.items() if self.account_of(obj) == account_id}
        return [m for m, obj in self.payment_methods.items() if obj["customer"] in customers]

    # --- Checkout -------------------------------------------------------------------------

    def create_session(self, params: Obj) -> Obj:
        mode = params.get("mode")
        if mode not in ("payment", "setup"):
            raise StripeRefusal(400, {"type": "invalid_request_error", "param": "mode",
                                      "message": "Invalid mode."})  # fmt: skip
        self._get(self.customers, "customer", params.get("customer") or "")
        items = params.get("line_items") or []
        amount = sum(int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1)) for i in items)
        currency = items[0]["price_data"]["currency"] if items else params.get("currency")
        session = {
            "id": self.new_id("cs"),
            "object": "checkout.session",
            "mode": mode,
            "status": "open",
            "payment_status": "unpaid" if mode == "payment" else "no_payment_required",
            "customer": params.get("customer"),
            "client_reference_id": params.get("client_reference_id"),
            "amount_total": amount if mode == "payment" else None,
            "currency": currency,
            "metadata": dict(params.get("metadata") or {}),
            "payment_intent": None,
            "setup_intent": None,
            "expires_at": int(params.get("expires_at") or self.timestamp() + 86400),
            "created": self.timestamp(),
            "url": None,
            "_intent_metadata": dict(
                (params.get("payment_intent_data") or params.get("setup_intent_data") or {}).get(
                    "metadata"
                )
                or {}
            ),
        }
        session["url"] = f"https://checkout.stripe.sim/c/pay/{session['id']}"
        self.sessions[session["id"]] = session
        return session

    def complete_session(self, session_id: str, behaviour: str, last4: str) -> bool:
        """The customer finishes the Checkout page with a new card. A card that declines
        leaves the page open (the customer sees why) and nothing is emitted."""
        session = self.sessions[session_id]
        if session["status"] != "open" or self.timestamp() >= session["expires_at"]:
            return False
        if session["mode"] == "payment" and behaviour in ("decline",):
            return False
        method = self.new_card(session["customer"], last4)
        self.behaviour[method["id"]] = behaviour
        session["status"] = "complete"
        if session["mode"] == "setup":
            setup = {
                "id": self.new_id("seti"),
                "object": "setup_intent",
                "status": "succeeded",
                "customer": session["customer"],
                "payment_method": method["id"],
                "usage": "off_session",
                "metadata": dict(session["_intent_metadata"]),
                "created": self.timestamp(),
            }
            method["customer"] = session["customer"]
            self.setup_intents[setup["id"]] = setup
            session["setup_intent"] = setup["id"]
            self.emit("setup_intent.succeeded", setup)
            self.emit("checkout.session.completed", self._public(session))
            return True
        # Payment mode with setup_future_usage: the card is attached for later use, and the
        # customer authenticated on the page, so even a `need_auth` card pays here.
        method["customer"] = session["customer"]
        intent = self._intent(
            session["amount_total"],
            session["currency"],
            session["customer"],
            method["id"],
            session["_intent_metadata"],
        )
        self._succeed(intent)
        session["payment_status"] = "paid"
        session["payment_intent"] = intent["id"]
        self.emit("checkout.session.completed", self._public(session))
        self.emit("payment_intent.succeeded", intent)
        return True

    # --- PaymentIntents -------------------------------------------------------------------

    def _intent(self, amount: int, currency: str, customer: str | None, method: str | None,
                metadata: Obj) -> Obj:  # fmt: skip
        intent = {
            "id": self.new_id("pi"),
            "object": "payment_intent",
            "amount": int(amount),
            "amount_received": 0,
            "currency": currency,
            "customer": customer,
            "payment_method": method,
            "status": "requires_confirmation",
            "metadata": dict(metadata or {}),
            "last_payment_error": None,
            "latest_charge": None,
            "created": self.timestamp(),
        }
        self.intents[intent["id"]] = intent
        return intent

    def _succeed(self, intent: Obj) -> None:
        charge = {
            "id": self.new_id("ch"),
            "object": "charge",
            "amount": intent["amount"],
            "amount_refunded": 0,
            "currency": intent["currency"],
            "customer": intent["customer"],
            "payment_intent": intent["id"],
            "paid": True,
            "refunded": False,
            "status": "succeeded",
            "metadata": dict(intent["metadata"]),
            "created": self.timestamp(),
        }
        self.charges[charge["id"]] = charge
        intent.update(status="succeeded", amount_received=intent["amount"],
                      latest_charge=charge["id"])  # fmt: skip

    def _fail(self, intent: Obj, code: str, decline_code: str, message: str) -> StripeRefusal:
        error = {"type": "card_error", "code": code, "decline_code": decline_code,
                 "message": message}  # fmt: skip
        intent.update(status="requires_payment_method", last_payment_error=dict(error))
        self.emit("payment_intent.payment_failed", intent)
        return StripeRefusal(402, {**error, "payment_intent": _copy(intent)})

    def create_intent(self, params: Obj) -> Obj:
        """An off-session PaymentIntent confirmed at once with the saved card."""
        customer_id = params.get("customer")
        method_id = params.get("payment_method")
        self._get(self.customers, "customer", customer_id or "")
        method = self._get(self.payment_methods, "payment_method", method_id or "")
        if method["customer"] != customer_id:
            raise StripeRefusal(400, {"type": "invalid_request_error", "param": "payment_method",
                                      "message": "The payment method is not attached to the customer."})  # fmt: skip
        amount = int(params["amount"])
        if amount <= 0:
            raise StripeRefusal(400, {"type": "invalid_request_error", "param": "amount",
                                      "message": "Amount must be positive."})  # fmt: skip
        intent = self._intent(amount, params["currency"], customer_id, method_id,
                              params.get("metadata") or {})  # fmt: skip
        if not _truthy(params.get("confirm")):
            return intent
        behaviour = self.card_behaviour(method_id)
        if behaviour == "decline":
            raise self._fail(intent, "card_declined", "insufficient_funds",
                             "Your card has insufficient funds.")  # fmt: skip
        if behaviour == "need_auth" and _truthy(params.get("off_session")):
            raise self._fail(intent, "authentication_required", "authentication_required",
                             "Your card was declined. This transaction requires authentication.")  # fmt: skip
        if behaviour == "slow":
            intent["status"] = "processing"
            self.timers.append(Timer(self.now() + SETTLE_AFTER, f"settle {intent['id']}",
                                     lambda: self._settle(intent["id"])))  # fmt: skip
            return intent
        self._succeed(intent)
        self.emit("payment_intent.succeeded", intent)
        return intent

    def _settle(self, intent_id: str) -> None:
        """A processing payment settles: it succeeds, unless the card now declines."""
        intent = self.intents[intent_id]
        if intent["status"] != "processing":
            return
        if self.card_behaviour(intent["payment_method"]) == "decline":
            self._fail(intent, "card_declined", "insufficient_funds", "Insufficient funds.")
            return
        self._succeed(intent)
        self.emit("payment_intent.succeeded", intent)

    # --- refunds --------------------------------------------------------------------------

    def refund(self, charge_id: str, amount: int) -> int:
        """Support refunds `amount` (at most what is left) of a charge; returns it."""
        charge = self.charges[charge_id]
        amount = min(amount, charge["amount"] - charge["amount_refunded"])
        if amount <= 0:
            return 0
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        refund = {"id": self.new_id("re"), "object": "refund", "amount": amount,
                  "charge": charge_id, "payment_intent": charge["payment_intent"],
                  "currency": charge["currency"], "status": "succeeded",
                  "created": self.timestamp()}  # fmt: skip
        self.refunds[refund["id"]] = refund
        self.emit("charge.refunded", charge)
        return amount

    # --- reading --------------------------------------------------------------------------

    def _get(self, table: dict[str, Obj], kind: str, ident: str) -> Obj:
        found = table.get(ident)
        if found is None:
            raise _not_found(kind, ident)
        return found

    def _public(self, obj: Obj) -> Obj:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def retrieve(self, table: str, ident: str) -> Obj:
        kinds = {"customers": "customer", "payment_methods": "payment_method",
                 "sessions": "checkout.session", "setup_intents": "setup_intent",
                 "intents": "payment_intent", "charges": "charge", "refunds": "refund"}  # fmt: skip
        return self._public(self._get(getattr(self, table), kinds[table], ident))

    def listing(self, table: str, params: Obj) -> Obj:
        """Newest first, `limit` at a time after `starting_after`, like Stripe's lists."""
        rows = sorted(getattr(self, table).values(), key=lambda o: o["id"], reverse=True)
        after = params.get("starting_after")
        if after:
            ids = [o["id"] for o in rows]
            rows = rows[ids.index(after) + 1 :] if after in ids else []
        limit = int(params.get("limit") or 10)
        page = [self._public(o) for o in rows[:limit]]
        return {"object": "list", "data": page, "has_more": len(rows) > limit, "url": ""}

    # --- what the invariants ask ----------------------------------------------------------

    def succeeded_payments(self) -> list[Obj]:
        """Every PaymentIntent that took money."""
        return [i for i in self.intents.values() if i["status"] == "succeeded"]

    def charge_of(self, ref: str) -> Obj | None:
        """The charge of a PaymentIntent, or of a Checkout Session's PaymentIntent."""
        if ref.startswith("cs_"):
            ref = (self.sessions.get(ref) or {}).get("payment_intent") or ""
        intent = self.intents.get(ref)
        if intent is None or not intent.get("latest_charge"):
            return None
        return self.charges[intent["latest_charge"]]

    def due_timers(self, until: datetime) -> list[Timer]:
        due = sorted((t for t in self.timers if t.at <= until), key=lambda t: t.at)
        for timer in due:
            self.timers.remove(timer)
        return due


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _copy(obj: Obj) -> Obj:
    """A snapshot of an object as it is now (events carry the object at their time)."""
    out: Obj = {}
    for key, value in obj.items():
        if key.startswith("_"):
            continue
        out[key] = _copy(value) if isinstance(value, dict) else value
    return out
