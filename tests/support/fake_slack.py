"""A fake Slack Web API on loopback that records every call and answers like Slack.

Web API methods live under /api/<method> (form, query or JSON bodies, like slack_sdk
sends them); response_url posts go to /response/<id>. `fail_with(500)` or
`rate_limit(retry_after=1)` make the next calls fail the way Slack does.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str | None
    status: int
    at: float = field(default_factory=time.monotonic)


@dataclass
class User:
    id: str
    is_admin: bool = False
    is_owner: bool = False
    name: str = ""


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.users: dict[str, User] = {}
        self.bot_team = "T0001"
        #: Channels the bot cannot post in (answer `not_in_channel`).
        self.closed_channels: set[str] = set()
        self._failures: list[tuple[int, dict[str, str]]] = []
        self._fail_methods: set[str] | None = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._ts = itertools.count(1)
        self._views = itertools.count(1)
        self.oauth_team = ("T0NEW", "New Team")
        #: Seconds each method takes to answer (a slow Slack).
        self.delays: dict[str, float] = {}
        #: Methods that answer only once their event is set (a Slack slow for as long as
        #: the test wants, without timing anything); `calls` records them when answered.
        self.holds: dict[str, threading.Event] = {}
        #: Tokens Slack no longer accepts (the app was uninstalled or the token revoked).
        self.revoked_tokens: set[str] = set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                parsed = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                args: dict[str, Any] = {k: v[0] for k, v in parse_qs(parsed.query).items()}
                ctype = self.headers.get("Content-Type") or ""
                if raw:
                    if "json" in ctype:
                        args.update(json.loads(raw))
                    else:
                        args.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
                for key in ("blocks", "view"):
                    if isinstance(args.get(key), str):
                        try:
                            args[key] = json.loads(args[key])
                        except ValueError:
                            pass
                auth = self.headers.get("Authorization") or ""
                token = auth.removeprefix("Bearer ") or args.get("token")
                if parsed.path.startswith("/response/"):
                    method = "response_url"
                    args["_path"] = parsed.path
                else:
                    method = parsed.path.removeprefix("/api/")
                if method in fake.delays:
                    time.sleep(fake.delays[method])
                if method in fake.holds:
                    fake.holds[method].wait(timeout=120)
                status, payload, headers = fake._answer(method, args, token)
                with fake._cond:
                    fake.calls.append(Call(method, args, token, status))
                    fake._cond.notify_all()
                self._reply(status, payload, headers)

            do_GET = _handle
            do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    # -- control ------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def response_url(self, name: str = "1") -> str:
        return f"{self.url}/response/{name}"

    def add_user(self, user_id: str, *, admin: bool = False, owner: bool = False) -> None:
        self.users[user_id] = User(user_id, is_admin=admin, is_owner=owner, name=user_id.lower())

    def fail_with(self, status: int, times: int = 1, *, methods: set[str] | None = None) -> None:
        """The next `times` calls (of `methods`, default all but users.info) answer `status`."""
        with self._lock:
            self._failures += [(status, {})] * times
            self._fail_methods = methods

    def rate_limit(
        self, retry_after: int = 1, times: int = 1, *, methods: set[str] | None = None
    ) -> None:
        with self._lock:
            self._failures += [(429, {"Retry-After": str(retry_after)})] * times
            self._fail_methods = methods

    def heal(self) -> None:
        with self._lock:
            self._failures.clear()

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    # -- reading what Slack received ------------------------------------------------------

    def of(self, method: str, *, ok_only: bool = True) -> list[Call]:
        with self._lock:
            return [
                c for c in self.calls if c.method == method and (c.status == 200 or not ok_only)
            ]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """Block until Slack received `count` successful calls of `method`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [c for c in self.calls if c.method == method and c.status == 200]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({c.method for c in self.calls})
                    raise AssertionError(
                        f"Slack got {len(found)} {method} calls, not {count}; saw {seen}"
                    )
                self._cond.wait(left)

    # -- answers --------------------------------------------------------------------------

    def _answer(
        self, method: str, args: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            applies = self._fail_methods is None and method not in ("users.info", "auth.test")
            applies = applies or (self._fail_methods is not None and method in self._fail_methods)
            if self._failures and applies:
                status, headers = self._failures.pop(0)
                error = "ratelimited" if status == 429 else "internal_error"
                return status, {"ok": False, "error": error}, headers
        if method == "response_url":
            return 200, {"ok": True}, {}
        if not token and method not in ("oauth.v2.access",):
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token in self.revoked_tokens:
            return 200, {"ok": False, "error": "token_revoked"}, {}
        if method == "auth.test":
            team = self.oauth_team[0] if token == "xoxb-new-team" else self.bot_team
            return 200, {"ok": True, "url": "https://acme.slack.com/", "team": "Acme", "user": "creditbot",
                         "team_id": team, "user_id": "UBOT", "bot_id": "BBOT"}, {}  # fmt: skip
        if method == "users.info":
            user = self.users.get(args.get("user", ""))
            if user is None:
                return 200, {"ok": False, "error": "user_not_found"}, {}
            return 200, {"ok": True, "user": {"id": user.id, "name": user.name, "is_admin": user.is_admin,
                         "is_owner": user.is_owner, "is_primary_owner": False}}, {}  # fmt: skip
        if method in ("chat.postMessage", "chat.postEphemeral"):
            channel = args.get("channel", "")
            if channel in self.closed_channels:
                return 200, {"ok": False, "error": "not_in_channel"}, {}
            ts = f"1700000000.{next(self._ts):06d}"
            if method == "chat.postEphemeral":
                return 200, {"ok": True, "message_ts": ts}, {}
            return (
                200,
                {"ok": True, "channel": channel, "ts": ts, "message": {"text": args.get("text")}},
                {},
            )
        if method in ("views.open", "views.push", "views.update", "views.publish"):
            view = dict(args.get("view") or {})
            view["id"] = args.get("view_id") or f"V{next(self._views):04d}"
            view["hash"] = "h"
            return 200, {"ok": True, "view": view}, {}
        if method == "conversations.join":
            return 200, {"ok": True, "channel": {"id": args.get("channel")}}, {}
        if method == "oauth.v2.access":
            team_id, team_name = self.oauth_team
            return 200, {"ok": True, "app_id": "A0001", "authed_user": {"id": "UINSTALLER"},
                         "scope": "commands,chat:write,chat:write.public,users:read", "token_type": "bot",
                         "access_token": "xoxb-new-team", "bot_user_id": "UBOT",
                         "team": {"id": team_id, "name": team_name}, "enterprise": None,
                         "is_enterprise_install": False}, {}  # fmt: skip
        return 200, {"ok": False, "error": "unknown_method"}, {}
