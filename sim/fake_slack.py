"""An in-memory Slack Web API, answered to the real slack_sdk `WebClient`.

`sim_web_client(fake)` is a WebClient subclass whose HTTP exchange is answered by `FakeSlack`
instead of the network; everything above it is slack_sdk's own: its retry handlers (the
ones creditbot configures), its errors, its handling of 429 and Retry-After.

Faults, as Slack shows them:
- an outage: every call answers 500 (or 503) until it ends;
- `429`: rate limited with a Retry-After (short ones slack_sdk retries itself, long ones
  are left to creditbot's outbox);
- `timeout`: the connection times out before Slack sees the request;
- `lost`: Slack posts the message, then the answer times out. The sender cannot know the
  message is there; a retry posts it again. Such posts are marked `answer_lost`.
"""

from __future__ import annotations

import io
import itertools
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.client import HTTPMessage
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import parse_qsl, urlparse
from urllib.request import Request

from slack_sdk import WebClient

BOT_TOKEN = "xoxb-sim"
API_URL = "https://slack.sim/api/"


@dataclass
class Post:
    channel: str
    text: str
    at: datetime
    #: Slack posted it but the sender never heard so (it may post it again).
    answer_lost: bool = False
    #: Posted during a step in which the process crashed.
    crashed: bool = False


@dataclass
class FakeSlack:
    now: Callable[[], datetime]
    posts: list[Post] = field(default_factory=list)
    #: Outages: (start, end, status).
    outages: list[tuple[datetime, datetime, int]] = field(default_factory=list)
    #: Faults for the next requests, in order: '500', '429:<seconds>', 'timeout', 'lost'.
    trouble: deque[str] = field(default_factory=deque)
    calls: int = 0
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))

    def channel_posts(self, channel: str) -> list[Post]:
        return [p for p in self.posts if p.channel == channel]

    def answer(
        self, method: str, args: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        """Slack's answer to one HTTP request (raises for a timeout)."""
        self.calls += 1
        now = self.now()
        for start, end, status in self.outages:
            if start <= now < end:
                return status, {}, {"ok": False, "error": "internal_error"}
        fault = self.trouble.popleft() if self.trouble else None
        if fault == "timeout":
            raise URLError(TimeoutError("timed out (simulated)"))
        if fault == "500":
            return 500, {}, {"ok": False, "error": "internal_error"}
        if fault and fault.startswith("429"):
            return 429, {"Retry-After": fault.split(":")[1]}, {"ok": False, "error": "ratelimited"}
        if token != BOT_TOKEN:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        if method == "chat.postMessage":
            channel = str(args.get("channel") or "")
            if not channel:
                return 200, {}, {"ok": False, "error": "channel_not_found"}
            self.posts.append(Post(channel, str(args.get("text") or ""), now, fault == "lost"))
            if fault == "lost":
                raise TimeoutError("The read operation timed out (simulated)")
            ts = f"{int(now.timestamp())}.{next(self._ts):06d}"
            return 200, {}, {"ok": True, "channel": channel, "ts": ts}
        if method == "auth.test":
            return 200, {}, {"ok": True, "team_id": "TSIM", "user_id": "UBOT", "bot_id": "BBOT"}
        return 200, {}, {"ok": True}


def sim_web_client(fake: FakeSlack) -> type[WebClient]:
    """A WebClient class whose requests `fake` answers."""

    class SimWebClient(WebClient):
        def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
            method = urlparse(url).path.rsplit("/", 1)[-1]
            raw = req.data.decode() if isinstance(req.data, bytes) else ""
            content_type = req.get_header("Content-type") or ""
            args = json.loads(raw) if "json" in content_type and raw else dict(parse_qsl(raw))
            auth = req.get_header("Authorization") or ""
            token = auth.removeprefix("Bearer ") or args.get("token")
            status, headers, body = fake.answer(method, args, token)
            data = json.dumps(body)
            if status != 200:
                message = HTTPMessage()
                message["Content-Type"] = "application/json; charset=utf-8"
                for key, value in headers.items():
                    message[key] = value
                raise HTTPError(url, status, "simulated", message, io.BytesIO(data.encode()))
            return {"status": 200, "headers": {"content-type": "application/json"}, "body": data}

    return SimWebClient
