"""In-memory webhook receivers, answering the real webhook deliverer's HTTP requests.

`sim_opener(fake)` is a urllib opener like `bot.outbound.webhooks.opener` (redirects not
followed) with one more handler, which hands each HTTPS request to `FakeReceivers` instead
of the network; everything else is urllib's own: a non-2xx answer becomes its HTTPError, a
timeout its error. The simulation patches it in through that seam.

Each receiver is one endpoint an account added, at its own URL, and checks every request
as the docs tell a receiver to: `standardwebhooks.Webhook(secret).verify(body, headers)`
with the secret `creditbot webhooks add` printed. A request that fails it, or one that
reaches a URL no live endpoint has (one removed), is a finding, answered 400 or 410.

Faults, per receiver:
- an outage: every request answers 500 (or 503) until it ends;
- `500`, `503`: the next request answers that;
- `timeout`: the connection times out before the receiver sees the request;
- `lost`: the receiver takes the event, then the answer times out. creditbot cannot know
  it arrived and sends it again. Such receipts are marked `answer_lost`.
"""

from __future__ import annotations

import io
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from http.client import HTTPMessage
from typing import Any
from urllib.error import URLError
from urllib.response import addinfourl

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

import bot.outbound.webhooks

HOST = "hooks.sim"


def hook_url(hook: int) -> str:
    """The URL of the simulation's endpoint number `hook`."""
    return f"https://{HOST}/hook/{hook}"


@dataclass
class Receipt:
    hook: int
    webhook_id: str
    event: dict[str, Any]
    at: datetime
    #: The receiver took it but creditbot never heard so (it may send it again).
    answer_lost: bool = False
    #: Received during a step in which the process crashed.
    crashed: bool = False


@dataclass
class Receiver:
    hook: int
    secret: str
    removed: bool = False
    #: Outages: (start, end, status).
    outages: list[tuple[datetime, datetime, int]] = field(default_factory=list)
    #: Faults for the next requests, in order: '500', '503', 'timeout', 'lost'.
    trouble: deque[str] = field(default_factory=deque)


@dataclass
class FakeReceivers:
    now: Callable[[], datetime]
    receivers: dict[str, Receiver] = field(default_factory=dict)
    receipts: list[Receipt] = field(default_factory=list)
    #: What no honest delivery does: a bad signature, a request to a removed endpoint.
    findings: list[tuple[str, str]] = field(default_factory=list)
    requests: int = 0

    def open(self, hook: int, secret: str) -> None:
        self.receivers[hook_url(hook)] = Receiver(hook, secret)

    def receiver(self, hook: int) -> Receiver | None:
        return self.receivers.get(hook_url(hook))

    def heal(self) -> None:
        for receiver in self.receivers.values():
            receiver.outages.clear()
            receiver.trouble.clear()

    def answer(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """The receiver's answer to one POST (raises for a timeout)."""
        self.requests += 1
        receiver = self.receivers.get(url)
        if receiver is None or receiver.removed:
            what = f"endpoint {receiver.hook}" if receiver else url
            self.findings.append(("nothing delivered to a removed endpoint",
                                  f"{what} got {headers.get('webhook-id')} after it was removed"))  # fmt: skip
            return 410, b"gone"
        now = self.now()
        for start, end, status in receiver.outages:
            if start <= now < end:
                return status, b"receiver down (simulated)"
        fault = receiver.trouble.popleft() if receiver.trouble else None
        if fault == "timeout":
            raise URLError(TimeoutError("timed out (simulated)"))
        if fault in ("500", "503"):
            return int(fault), b"receiver error (simulated)"
        try:
            event = Webhook(receiver.secret).verify(body, headers)
        except WebhookVerificationError as exc:
            self.findings.append(("webhooks signed with the endpoint's secret",
                                  f"endpoint {receiver.hook}: {headers.get('webhook-id')}: {exc}"))  # fmt: skip
            return 400, b"bad signature"
        self.receipts.append(
            Receipt(receiver.hook, headers["webhook-id"], event, now, fault == "lost")
        )
        if fault == "lost":
            raise TimeoutError("The read operation timed out (simulated)")
        return 204, b""


class _ReceiverHandler(urllib.request.BaseHandler):
    handler_order = 100  # before urllib's own HTTPSHandler: nothing goes to the network

    def __init__(self, fake: FakeReceivers) -> None:
        self.fake = fake

    def https_open(self, request: urllib.request.Request) -> addinfourl:
        data = request.data if isinstance(request.data, bytes) else b""
        headers = {k.lower(): v for k, v in request.header_items()}
        status, text = self.fake.answer(request.full_url, data, headers)
        message = HTTPMessage()
        message["Content-Type"] = "text/plain"
        response = addinfourl(io.BytesIO(text), message, request.full_url, status)
        response.msg = HTTPStatus(status).phrase  # what urllib's error processor reads
        return response


def sim_opener(fake: FakeReceivers) -> urllib.request.OpenerDirector:
    """The product's opener, its requests answered by `fake`."""
    return urllib.request.build_opener(bot.outbound.webhooks._NoRedirects, _ReceiverHandler(fake))


def event_of(receipt: Receipt) -> tuple[int, str]:
    """(alert id, event type) of what was received."""
    return int(receipt.event["data"]["alert_id"]), str(receipt.event["type"])
