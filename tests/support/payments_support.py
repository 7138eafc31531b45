"""What the payments tests share: localstripe on loopback, a loopback fake of Stripe
Checkout in front of it, creditbot served by uvicorn on loopback, and Stripe-signed events.

Nothing here talks to the real Stripe.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiohttp import web

from bot.config import Settings
from bot.context import AppContext, build_context
from bot.stripe.customers import ensure_customer, save_payment_method
from ledger.db import transaction
from ledger.stripe_records import save_card
from tests.support.waiting import wait_until  # noqa: F401  (payments tests import it from here)

with warnings.catch_warnings():  # localstripe registers its routes on import
    warnings.simplefilter("ignore", DeprecationWarning)
    from localstripe.server import unflatten_data

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "sk_test_creditbot"
WEBHOOK_SECRET = "whsec_creditbot_test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0, process: subprocess.Popen | None = None) -> None:
    """Wait until something listens on `port` (and `process`, if given, still runs: one
    that exited lost its port to someone else, who is what answers there)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


# --- localstripe ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """localstripe started as a subprocess on a loopback port, for the whole run (one per
    xdist worker). The port is free when chosen, not reserved: a start that lost it to
    another process is tried again on another port."""
    for attempt in range(4):
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.payments_localstripe", str(port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_port(port, timeout=60, process=proc)
            break
        except RuntimeError:
            proc.kill()
            said = proc.stderr.read().decode() if proc.stderr else ""
            if "address already in use" not in said.lower() or attempt == 3:
                raise RuntimeError(said) from None
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def stripe_http(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, auth=(SECRET_KEY, ""), timeout=10)


def register_localstripe_webhook(localstripe: str, url: str, secret: str = WEBHOOK_SECRET) -> None:
    """localstripe signs and posts its events to `url` (`/_config/webhooks/<id>`)."""
    r = httpx.post(
        f"{localstripe}/_config/webhooks/creditbot",
        data={"url": url, "secret": secret},
        timeout=10,
    )
    r.raise_for_status()


#: localstripe waits this long (1 s) before it sends an event, plus a margin for a busy core.
LOCALSTRIPE_WEBHOOK_DELAY = 1.2


def disable_localstripe_webhook(localstripe: str) -> None:
    register_localstripe_webhook(localstripe, "http://127.0.0.1:9/nowhere")


def new_card(localstripe: str, number: str = "4242424242424242") -> str:
    with stripe_http(localstripe) as http:
        r = http.post(
            "/v1/payment_methods",
            data={
                "type": "card",
                "card[number]": number,
                "card[exp_month]": "12",
                "card[exp_year]": "2034",
                "card[cvc]": "123",
            },
        )
        r.raise_for_status()
        return r.json()["id"]


# --- Stripe's signature scheme -------------------------------------------------------------


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """`Stripe-Signature` as Stripe computes it: t=..., v1=HMAC-SHA256(secret, "t.payload")."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
    return json.dumps(
        {
            "id": event_id or f"evt_{secrets.token_hex(8)}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "api_version": "2026-10-28.endive",
            "data": {"object": obj},
        }
    ).encode()


def post_event(
    url: str, payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> httpx.Response:
    return httpx.post(
        url,
        content=payload,
        headers={
            "Stripe-Signature": sign(payload, secret, timestamp),
            "Content-Type": "application/json",
        },
        timeout=20,
    )


# --- a loopback fake of Stripe Checkout in front of localstripe -----------------------------


class CheckoutFake:
    """Answers /v1/checkout/sessions (create, retrieve, list) like Stripe does and forwards
    every other request to localstripe. `complete()` plays the customer paying on the
    Checkout page; its webhooks are signed with Stripe's scheme."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.sessions: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []  # what creditbot asked for
        self.webhook_url: str | None = None
        #: Customer Portal sessions creditbot asked for (localstripe has no portal).
        self.portals: list[dict[str, Any]] = []
        #: Every request passed on to localstripe: (method, path, form fields).
        self.forwarded: list[tuple[str, str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    # server
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/checkout/sessions", self._create)
        app.router.add_get("/v1/checkout/sessions", self._list)
        app.router.add_get("/v1/checkout/sessions/{id}", self._retrieve)
        app.router.add_post("/v1/billing_portal/sessions", self._portal)
        app.router.add_get("/pay/{id}", self._page)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> CheckoutFake:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _create(self, request: web.Request) -> web.Response:
        if not request.headers.get("Authorization", "").startswith(("Bearer sk_", "Basic ")):
            return web.json_response({"error": {"message": "Unauthorized"}}, status=401)
        data = unflatten_data(await request.post())
        self.created.append({"data": data, "headers": dict(request.headers)})
        session_id = f"cs_test_{secrets.token_hex(12)}"
        items = data.get("line_items") or []
        amount = sum(int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1)) for i in items)
        currency = (items[0]["price_data"]["currency"] if items else data.get("currency")) or None
        obj = {
            "id": session_id,
            "object": "checkout.session",
            "mode": data["mode"],
            "status": "open",
            "payment_status": "unpaid" if data["mode"] == "payment" else "no_payment_required",
            "customer": data.get("customer"),
            "client_reference_id": data.get("client_reference_id"),
            "amount_total": amount if data["mode"] == "payment" else None,
            "currency": currency,
            "metadata": data.get("metadata") or {},
            "payment_intent": None,
            "setup_intent": None,
            "success_url": data.get("success_url"),
            "cancel_url": data.get("cancel_url"),
            "expires_at": int(data["expires_at"]) if data.get("expires_at") else None,
            "created": int(time.time()),
            "livemode": False,
            "url": f"{self.url}/pay/{session_id}",
        }
        with self.lock:
            self.sessions[session_id] = {"obj": obj, "data": data}
        return web.json_response(obj)

    async def _retrieve(self, request: web.Request) -> web.Response:
        with self.lock:
            found = self.sessions.get(request.match_info["id"])
        if found is None:
            return web.json_response(
                {"error": {"type": "invalid_request_error", "code": "resource_missing"}},
                status=404,
            )
        return web.json_response(found["obj"])

    async def _page(self, request: web.Request) -> web.Response:
        """The Checkout page a browser lands on: what it would pay (a browser test's last
        step shows it)."""
        with self.lock:
            found = self.sessions.get(request.match_info["id"])
        if found is None:
            return web.Response(status=404, text="No such Checkout Session")
        obj = found["obj"]
        amount = obj["amount_total"] or 0
        body = (
            "<!doctype html><title>Checkout (test)</title><h1>Stripe Checkout (test fake)</h1>"
            f"<p id='amount'>Pay {amount / 100:.2f} {(obj['currency'] or '').upper()}</p>"
            f"<p>Session {obj['id']}, mode {obj['mode']}</p>"
        )
        return web.Response(text=body, content_type="text/html")

    async def _list(self, request: web.Request) -> web.Response:
        with self.lock:
            data = [s["obj"] for s in self.sessions.values()]
        data.sort(key=lambda s: s["created"], reverse=True)
        return web.json_response(
            {"object": "list", "data": data, "has_more": False, "url": "/v1/checkout/sessions"}
        )

    async def _portal(self, request: web.Request) -> web.Response:
        """A Customer Portal session as Stripe answers it (the page itself is not faked)."""
        data = unflatten_data(await request.post())
        session_id = f"bps_test_{secrets.token_hex(12)}"
        obj = {
            "id": session_id,
            "object": "billing_portal.session",
            "customer": data.get("customer"),
            "return_url": data.get("return_url"),
            "livemode": False,
            "url": f"{self.url}/portal/{session_id}",
        }
        with self.lock:
            self.portals.append(obj)
        return web.json_response(obj)

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self.lock:
            fields = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
            self.forwarded.append((request.method, request.path, fields))
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("authorization", "content-type", "idempotency-key", "stripe-version")
        }
        async with httpx.AsyncClient(base_url=self.upstream, timeout=20) as http:
            r = await http.request(request.method, request.path_qs, content=body, headers=headers)
        return web.Response(body=r.content, status=r.status_code, content_type="application/json")

    # the customer on the Checkout page
    def complete(
        self,
        session_id: str,
        card: str = "4242424242424242",
        *,
        send: bool = True,
        paid: bool = True,
    ) -> dict[str, Any]:
        """Pay (payment mode) or save the card (setup mode) through localstripe, mark the
        session complete and, with `send`, post the signed `checkout.session.completed`."""
        with self.lock:
            entry = self.sessions[session_id]
        obj, data = entry["obj"], entry["data"]
        method = new_card(self.upstream, card)
        with stripe_http(self.upstream) as http:
            if obj["mode"] == "payment":
                meta = (data.get("payment_intent_data") or {}).get("metadata") or {}
                http.post(
                    f"/v1/payment_methods/{method}/attach", data={"customer": obj["customer"]}
                ).raise_for_status()
                form = {
                    "amount": str(obj["amount_total"]),
                    "currency": obj["currency"],
                    "customer": obj["customer"],
                    "payment_method": method,
                    "confirm": "true" if paid else "false",
                    **{f"metadata[{k}]": v for k, v in meta.items()},
                }
                r = http.post("/v1/payment_intents", data=form)
                r.raise_for_status()
                obj["payment_intent"] = r.json()["id"]
                obj["payment_status"] = "paid" if paid else "unpaid"
            else:
                r = http.post(
                    "/v1/setup_intents",
                    data={
                        "customer": obj["customer"],
                        **{f"metadata[{k}]": v for k, v in obj["metadata"].items()},
                    },
                )
                r.raise_for_status()
                setup = r.json()["id"]
                http.post(
                    f"/v1/setup_intents/{setup}/confirm", data={"payment_method": method}
                ).raise_for_status()
                obj["setup_intent"] = setup
            obj["status"] = "complete"
        if send:
            self.send("checkout.session.completed", session_id)
        return obj

    def pay_async(self, session_id: str, *, send: bool = True) -> dict[str, Any]:
        """A delayed payment method settles: confirm the PaymentIntent, mark it paid."""
        with self.lock:
            obj = self.sessions[session_id]["obj"]
        with stripe_http(self.upstream) as http:
            http.post(f"/v1/payment_intents/{obj['payment_intent']}/confirm").raise_for_status()
        obj["payment_status"] = "paid"
        if send:
            self.send("checkout.session.async_payment_succeeded", session_id)
        return obj

    def send(self, event_type: str, session_id: str, event_id: str | None = None) -> httpx.Response:
        assert self.webhook_url, "set webhook_url first"
        with self.lock:
            obj = dict(self.sessions[session_id]["obj"])
        return post_event(self.webhook_url, event(event_type, obj, event_id))


@pytest.fixture
def checkout_fake(localstripe_url: str) -> Iterator[CheckoutFake]:
    fake = CheckoutFake(localstripe_url).start()
    try:
        yield fake
    finally:
        fake.stop()


# --- creditbot on loopback ---------------------------------------------------------------------


def payments_context(
    db_url: str, api_base: str, public_url: str = "http://127.0.0.1:1"
) -> AppContext:
    settings = Settings(
        database_url=db_url,
        stripe_secret_key=SECRET_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=api_base,
        public_url=public_url,
        run_scheduler=False,
        slack_bot_token="",
        slack_signing_secret="",
    )
    return build_context(settings)


@pytest.fixture
def payments_app(sqlite_url: str, localstripe_url: str) -> Iterator[AppContext]:
    """The app's context on SQLite with localstripe, as the payment tests use it."""
    ctx = payments_context(sqlite_url, localstripe_url, "https://creditbot.example")
    yield ctx
    ctx.engine.dispose()


class Served:
    """creditbot's ASGI app under uvicorn on a loopback port."""

    def __init__(self, context: AppContext, port: int) -> None:
        from bot.http.app import create_app

        self.context = context
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            create_app(context), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> Served:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=15)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def served(sqlite_url: str, checkout_fake: CheckoutFake, localstripe_url: str) -> Iterator[Served]:
    """creditbot on SQLite, talking to Stripe through the Checkout fake (and so to
    localstripe), with localstripe's and the fake's webhooks pointed at /stripe/webhook."""
    # localstripe sends each event 1 s after it happened, to the webhook registered *then*:
    # an event of an earlier test, scheduled in the last second, would reach this server.
    # Point it nowhere and let that second pass before this server's URL is registered.
    disable_localstripe_webhook(localstripe_url)
    time.sleep(LOCALSTRIPE_WEBHOOK_DELAY)
    port = free_port()
    context = payments_context(sqlite_url, checkout_fake.url, f"http://127.0.0.1:{port}")
    server = Served(context, port).start()
    checkout_fake.webhook_url = f"{server.url}/stripe/webhook"
    register_localstripe_webhook(localstripe_url, checkout_fake.webhook_url)
    try:
        yield server
    finally:
        disable_localstripe_webhook(localstripe_url)
        server.stop()
        context.engine.dispose()


def saved_card(context, localstripe, account_id, number="4242424242424242"):
    """A card saved as Stripe would after Checkout: attached and made the default. Card
    4000000000000002 cannot be attached (localstripe declines it then), so it is recorded
    as saved directly: the decline comes when it is charged, as with Stripe."""
    customer = ensure_customer(context, account_id)
    method = new_card(localstripe, number)
    if number == "4000000000000002":
        transaction(
            context.sessions,
            lambda s: save_card(
                s,
                account_id,
                customer_id=customer,
                payment_method_id=method,
                brand="visa",
                last4=number[-4:],
            ),
        )
    else:
        save_payment_method(context, account_id, customer, method)
    return customer, method
