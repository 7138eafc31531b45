"""The real HTTP server (uvicorn on loopback) with the real Bolt app, talking to the fake
Slack; requests are signed with Slack's v0 scheme. Test modules import the fixtures."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn

from bot.config import Settings
from bot.context import AppContext, build_context
from bot.http.app import create_app
from ledger.db import transaction
from ledger.slack_workspaces import home_view
from tests.support.encryption import ENCRYPTION_KEY
from tests.support.factories import story
from tests.support.fake_slack import FakeSlack

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
#: CREDITBOT_ENCRYPTION_KEYS of the tests: encrypts the tokens of OAuth installs.
TOKEN_KEY = ENCRYPTION_KEY
TEAM = "T0001"
ADMIN, OWNER, MEMBER, BILLING = "UADMIN", "UOWNER", "UMEMBER", "UBILLING"


def signature(secret: str, timestamp: int | str, body: str) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(body: bytes, content_type: str, secret: str = SECRET) -> dict[str, str]:
    """The headers Slack would send with `body`, signed over its bytes as they are (which
    need not be UTF-8), now."""
    ts = str(int(time.time()))
    mac = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + mac.hexdigest(),
    }


class Slack:
    """What Slack would send to creditbot, signed, through the real server."""

    def __init__(self, base_url: str, fake: FakeSlack, context: AppContext) -> None:
        self.base_url = base_url
        self.fake = fake
        self.context = context
        self.http = httpx.Client(base_url=base_url, timeout=15)
        self._n = 0

    def post(self, body: str, content_type: str, *, secret: str = SECRET, timestamp: int | None = None,
             signed: bool = True) -> httpx.Response:  # fmt: skip
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {"Content-Type": content_type}
        if signed:
            headers["X-Slack-Request-Timestamp"] = str(ts)
            headers["X-Slack-Signature"] = signature(secret, ts, body)
        return self.http.post("/slack/events", content=body.encode(), headers=headers)

    def _next(self) -> str:
        self._n += 1
        return str(self._n)

    def command(
        self, command: str, text: str = "", *, user: str = ADMIN, team: str = TEAM, **kw: Any
    ) -> tuple[httpx.Response, str]:
        """A slash command; returns the HTTP response and its response_url."""
        response_url = self.fake.response_url(f"cmd{self._next()}")
        form = {
            "token": "legacy", "team_id": team, "team_domain": "acme", "channel_id": "C0GENERAL",
            "channel_name": "general", "user_id": user, "user_name": user.lower(), "command": command,
            "text": text, "api_app_id": "A0001", "response_url": response_url,
            "trigger_id": f"trigger.{self._next()}",
        }  # fmt: skip
        return self.post(urlencode(form), "application/x-www-form-urlencoded", **kw), response_url

    def interaction(self, payload: dict[str, Any], **kw: Any) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)})
        return self.post(body, "application/x-www-form-urlencoded", **kw)

    def click(self, action_id: str, value: str | None = None, *, user: str = ADMIN, team: str = TEAM,
              view: dict[str, Any] | None = None, block_id: str = "b", extra: dict[str, Any] | None = None,
              **kw: Any) -> tuple[httpx.Response, str | None]:  # fmt: skip
        """A button pressed in a message (ephemeral or channel) or, with `view`, in a modal
        or the Home tab. Returns the response and the message's response_url."""
        action: dict[str, Any] = {"action_id": action_id, "block_id": block_id, "type": "button",
                                  "action_ts": str(time.time())}  # fmt: skip
        if value is not None:
            action["value"] = value
        action.update(extra or {})
        payload: dict[str, Any] = {
            "type": "block_actions", "team": {"id": team, "domain": "acme"},
            "user": {"id": user, "team_id": team}, "api_app_id": "A0001",
            "trigger_id": f"trigger.{self._next()}", "actions": [action],
        }  # fmt: skip
        response_url = None
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view.get("id", "V1")}
            payload["view"] = {**view, "id": view.get("id", "V1"), "hash": "h"}
        else:
            response_url = self.fake.response_url(f"msg{self._next()}")
            payload["container"] = {"type": "message", "message_ts": "1.2", "channel_id": "C0GENERAL",
                                    "is_ephemeral": True}  # fmt: skip
            payload["channel"] = {"id": "C0GENERAL", "name": "general"}
            payload["response_url"] = response_url
        return self.interaction(payload, **kw), response_url

    def submit(self, view: dict[str, Any], answers: dict[str, str | None], *, user: str = ADMIN,
               team: str = TEAM) -> httpx.Response:  # fmt: skip
        """Submit a modal as Slack would: `answers` by block id (prefix match), other inputs
        keep their initial values."""
        submitted = {
            **view,
            "id": view.get("id", "V1"),
            "hash": "h",
            "state": {"values": state_for(view, answers)},
        }
        payload = {
            "type": "view_submission", "team": {"id": team, "domain": "acme"},
            "user": {"id": user, "team_id": team}, "api_app_id": "A0001",
            "trigger_id": f"trigger.{self._next()}", "view": submitted,
        }  # fmt: skip
        return self.interaction(payload)

    def event(self, event: dict[str, Any], *, team: str = TEAM, **kw: Any) -> httpx.Response:
        body = json.dumps({
            "token": "legacy", "team_id": team, "api_app_id": "A0001", "event": event,
            "type": "event_callback", "event_id": f"Ev{self._next()}", "event_time": int(time.time()),
            "authorizations": [{"team_id": team, "user_id": "UBOT", "is_bot": True}],
        })  # fmt: skip
        return self.post(body, "application/json", **kw)


def state_for(view: dict[str, Any], answers: dict[str, str | None]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        block_id, element = block["block_id"], block["element"]
        key = next((k for k in answers if block_id == k or block_id.startswith(k + ":")), None)
        kind = element["type"]
        if kind == "plain_text_input":
            value = answers[key] if key else element.get("initial_value")
            state = {"type": kind, "value": value if value not in ("",) else None}
        else:
            if key:
                option = None if answers[key] is None else {"value": answers[key]}
            else:
                option = element.get("initial_option")
            state = {"type": kind, "selected_option": option}
        values[block_id] = {element["action_id"]: state}
    return values


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    for user, admin, owner in ((ADMIN, True, False), (OWNER, False, True), (MEMBER, False, False),
                               (BILLING, False, False)):  # fmt: skip
        fake.add_user(user, admin=admin, owner=owner)
    yield fake
    fake.stop()


def settings_for(db_url: str, fake: FakeSlack, **extra: Any) -> Settings:
    values: dict[str, Any] = dict(
        database_url=db_url,
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=fake.api_url,
        slack_app_token="",
        slack_client_id="",
        slack_client_secret="",
        slack_alert_channel="",
        creditbot_encryption_keys=TOKEN_KEY,
        public_url="http://127.0.0.1",
        run_scheduler=False,
    )
    values.update(extra)
    return Settings(_env_file=None, **values)


class Server:
    """uvicorn serving creditbot's ASGI app in a thread on a free loopback port."""

    def __init__(self, context: AppContext) -> None:
        self.app = create_app(context)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def context(sqlite_url: str, fake_slack: FakeSlack) -> Iterator[AppContext]:
    ctx = build_context(settings_for(sqlite_url, fake_slack))
    yield ctx
    ctx.engine.dispose()


@pytest.fixture
def ids(context: AppContext) -> dict[str, int]:
    """The customer document's story (plan 1,000, agents A stop and B use_balance, wallet
    500), created now, on workspace T0001."""
    from ledger.cycles import utcnow

    return story(context.sessions, now=utcnow())


@pytest.fixture
def slack(context: AppContext, fake_slack: FakeSlack, ids: dict[str, int]) -> Iterator[Slack]:
    with Server(context) as server:
        client = Slack(server.url, fake_slack, context)
        yield client
        client.http.close()


def response_posts(fake: FakeSlack, response_url: str, count: int = 1) -> list[dict[str, Any]]:
    """What Slack shows after posts to one response_url (waits for `count` of them)."""
    path = "/" + response_url.split("/", 3)[3]
    deadline = time.monotonic() + 10
    while True:
        found = [c.args for c in fake.of("response_url") if c.args.get("_path") == path]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no response posted to {response_url}")
        time.sleep(0.01)


def open_home_tab(slack: Slack, fake: FakeSlack, user: str = ADMIN) -> Any:
    """`user` opens the App Home tab; returns Slack's views.publish call once creditbot has
    also recorded what it published (what later refreshes compare with)."""
    before = len(fake.of("views.publish"))  # wait for this opening's publish
    response = slack.event(
        {"type": "app_home_opened", "user": user, "channel": "D0001", "tab": "home"}
    )
    assert response.status_code == 200
    published = fake.wait_for("views.publish", count=before + 1)[-1]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the listener records what it published just after
        if transaction(slack.context.sessions, lambda s: home_view(s, TEAM, user)) is not None:
            break
        time.sleep(0.01)
    return published


def texts(blocks: list[dict[str, Any]]) -> str:
    """Every piece of text a person sees in `blocks`, joined by newlines."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and "text" in node:
                out.append(node["text"])
            for key, value in node.items():
                if key not in ("confirm",):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return "\n".join(out)


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Buttons by their label."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "button":
                found[node["text"]["text"]] = node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return found
