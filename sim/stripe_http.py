"""The Stripe API of `sim.fake_stripe`, answered in-process to the real `stripe` library.

`SimStripeHTTP` is a `stripe.HTTPClient`: creditbot's own StripeClient sends it the form
requests it would send to api.stripe.com, and the library parses the answers, raises its
own errors (CardError, APIConnectionError, RateLimitError...) and retries as it would.
It honours idempotency keys as Stripe does (the same key and parameters replay the first
answer for 24 hours; other parameters are an idempotency error) and can fail on purpose:

- `500`: Stripe answers 500 before doing anything;
- `429`: rate limited;
- `connect`: the connection fails before the request reaches Stripe;
- `lost`: Stripe does the work, then the connection drops before the answer arrives.

The library's retry backoff moves the simulated clock instead of sleeping.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlparse

import stripe

from sim.fake_stripe import FakeStripe, Obj, StripeRefusal

SECRET_KEY = "sk_test_sim"
#: How long Stripe keeps an idempotency key's answer.
KEY_TTL = timedelta(hours=24)
FAULTS = ("500", "429", "connect", "lost")

Route = tuple[str, re.Pattern[str], Callable[..., Obj]]


def unflatten(pairs: list[tuple[str, str]]) -> Obj:
    """Stripe's form encoding (`a[b][0][c]=v`) back into nested dicts and lists."""
    root: Obj = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append({})
                if last:
                    node[index] = value
                else:
                    if not isinstance(node[index], dict | list) or node[index] == {}:
                        node[index] = [] if parts[i + 1].isdigit() else {}
                    node = node[index]
            else:
                if last:
                    node[part] = value
                else:
                    if part not in node:
                        node[part] = [] if parts[i + 1].isdigit() else {}
                    node = node[part]
    return root


class SimStripeHTTP(stripe.HTTPClient):
    name = "sim"

    def __init__(self, fake: FakeStripe, sleep: Callable[[float], None]) -> None:
        super().__init__()
        self.fake = fake
        self._sleep = sleep
        #: Faults waiting for a request ('get /v1/...') that contains their second part.
        self.trouble: deque[tuple[str, str]] = deque()
        self._keys: dict[str, tuple[str, int, str, datetime]] = {}
        #: Every request that reached Stripe: (method, path, idempotency key).
        self.log: list[tuple[str, str, str | None]] = []
        f = fake
        self._routes: list[Route] = [
            ("post", re.compile(r"/v1/customers"), lambda p: f.create_customer(p)),
            ("post", re.compile(r"/v1/customers/([^/]+)"), lambda p, i: f.update_customer(i, p)),
            ("get", re.compile(r"/v1/payment_methods/([^/]+)"),
             lambda p, i: f.retrieve("payment_methods", i)),
            ("post", re.compile(r"/v1/payment_methods/([^/]+)/attach"), lambda p, i: f.attach(i, p)),
            ("post", re.compile(r"/v1/checkout/sessions"), lambda p: f.create_session(p)),
            ("get", re.compile(r"/v1/checkout/sessions"), lambda p: f.listing("sessions", p)),
            ("get", re.compile(r"/v1/checkout/sessions/([^/]+)"),
             lambda p, i: f.retrieve("sessions", i)),
            ("get", re.compile(r"/v1/setup_intents/([^/]+)"),
             lambda p, i: f.retrieve("setup_intents", i)),
            ("post", re.compile(r"/v1/payment_intents"), lambda p: f.create_intent(p)),
            ("get", re.compile(r"/v1/payment_intents"), lambda p: f.listing("intents", p)),
            ("get", re.compile(r"/v1/payment_intents/([^/]+)"),
             lambda p, i: f.retrieve("intents", i)),
            ("get", re.compile(r"/v1/charges/([^/]+)"), lambda p, i: f.retrieve("charges", i)),
            ("get", re.compile(r"/v1/refunds"), lambda p: f.listing("refunds", p)),
        ]  # fmt: skip

    # --- stripe.HTTPClient --------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        headers = dict(headers or {})
        parsed = urlparse(url)
        params = unflatten(parse_qsl(parsed.query, keep_blank_values=True))
        if post_data:
            raw = post_data.decode() if isinstance(post_data, bytes) else str(post_data)
            params.update(unflatten(parse_qsl(raw, keep_blank_values=True)))
        fault = self._fault(f"{method} {parsed.path}")
        if fault == "connect":
            raise stripe.APIConnectionError("Could not connect to Stripe (simulated).",
                                            should_retry=True)  # fmt: skip
        if fault in ("500", "429"):
            status = int(fault)
            kind = "api_error" if status == 500 else "rate_limit_error"
            return self._answer(status, {"error": {"type": kind, "message": f"simulated {status}"}})
        key = headers.get("Idempotency-Key") if method == "post" else None
        self.log.append((method, parsed.path, key))
        answer = self._idempotent(key, method, parsed.path, params)
        if fault == "lost":
            raise stripe.APIConnectionError("Connection dropped after Stripe answered (simulated).",
                                            should_retry=True)  # fmt: skip
        return answer

    def close(self) -> None:
        pass

    def _fault(self, request: str) -> str | None:
        """The first fault waiting for this request ('post /v1/payment_intents', ...)."""
        for queued in self.trouble:
            if queued[1] in request:
                self.trouble.remove(queued)
                return queued[0]
        return None

    def _sleep_time_seconds(self, num_retries: int) -> float:
        self._sleep(super()._sleep_time_seconds(num_retries))
        return 0.0

    # --- Stripe's side --------------------------------------------------------------------

    def _idempotent(
        self, key: str | None, method: str, path: str, params: Obj
    ) -> tuple[str, int, Mapping[str, str]]:
        now = self.fake.now()
        fingerprint = json.dumps([method, path, params], sort_keys=True)
        if key is not None:
            kept = self._keys.get(key)
            if kept is not None and now - kept[3] < KEY_TTL:
                if kept[0] != fingerprint:
                    return self._answer(400, {"error": {
                        "type": "idempotency_error",
                        "message": "Keys for idempotent requests can only be used with the same "
                                   "parameters they were first used with."}})  # fmt: skip
                return kept[2], kept[1], {"Idempotent-Replayed": "true"}
        body, status, _ = self._route(method, path, params)
        if key is not None:
            self._keys[key] = (fingerprint, status, body, now)
        return body, status, {}

    def _route(self, method: str, path: str, params: Obj) -> tuple[str, int, Mapping[str, str]]:
        for verb, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if verb == method and match:
                try:
                    return self._answer(200, handler(params, *match.groups()))
                except StripeRefusal as refusal:
                    return self._answer(refusal.status, {"error": refusal.error})
        return self._answer(404, {"error": {"type": "invalid_request_error",
                                            "message": f"Unrecognized request URL ({method.upper()}: {path})."}})  # fmt: skip

    def _answer(self, status: int, body: Obj) -> tuple[str, int, Mapping[str, str]]:
        return json.dumps(body), status, {"Request-Id": f"req_sim{len(self.log)}"}
