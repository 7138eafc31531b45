"""A webhook receiver on loopback that checks every request the way a customer's would:
the Standard Webhooks signature verified with the `standardwebhooks` library, repeats
dropped by `webhook-id`. `fail_next(n)` makes it answer 500 n times (an outage)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

__all__ = ["Receiver", "webhook_receiver"]


@dataclass
class Received:
    webhook_id: str
    event: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Receiver:
    secret: str = ""
    url: str = ""
    #: Events accepted (signature valid), in arrival order, each webhook-id once.
    events: list[Received] = field(default_factory=list)
    #: Every request's webhook-id and the status it was answered with.
    answers: list[tuple[str, int]] = field(default_factory=list)
    forged: int = 0
    repeats: int = 0
    _failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, n: int) -> None:
        with self._lock:
            self._failures = n

    def answer(self, body: bytes, headers: dict[str, str]) -> int:
        with self._lock:
            webhook_id = headers.get("webhook-id", "")
            if self._failures > 0:
                self._failures -= 1
                self.answers.append((webhook_id, 500))
                return 500
            try:
                event = Webhook(self.secret).verify(body, headers)
            except WebhookVerificationError:
                self.forged += 1
                self.answers.append((webhook_id, 401))
                return 401
            self.answers.append((webhook_id, 200))
            if any(r.webhook_id == webhook_id for r in self.events):
                self.repeats += 1
            else:
                self.events.append(Received(webhook_id, event, headers))
            return 200

    def types(self) -> list[str]:
        return [r.event["type"] for r in self.events]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            status = receiver.answer(body, {k.lower(): v for k, v in self.headers.items()})
            answer = json.dumps({"status": status}).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/creditbot"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
