"""Answering Slack the moment a request is acknowledged.

Slack wants an answer within 3 seconds and retries the request otherwise. Bolt answers when
`App.dispatch` returns, after the listener middleware; creditbot's middleware may ask Slack
who is an admin (bot/slack/middleware.py), and listeners run to the end inside dispatch
(`process_before_response=True`, so lazy listeners start after them). Here the answer
leaves as soon as a middleware or listener calls `ack()`, and the rest of the request goes
on after it. A request nothing acknowledges (a bad signature, Slack's URL check) is
answered with what dispatch returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltRequest, BoltResponse
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.socket_mode.internals import send_response
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

Answer = Callable[[BoltResponse], None]


class AnswerOnAck(Ack):
    """Bolt's `ack()`, which also hands its response to the transport, once."""

    def __init__(self, answer: Answer) -> None:
        super().__init__()
        self._answer = answer
        self._lock = threading.Lock()
        self.given: BoltResponse | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        response = super().__call__(*args, **kwargs)
        self.give(response)
        return response

    def __deepcopy__(self, memo: dict[int, Any]) -> AnswerOnAck:
        # Bolt deep-copies the request for lazy listeners: it is the same request, with the
        # same (already given) answer.
        return self

    def give(self, response: BoltResponse) -> BoltResponse:
        """Answer with `response` unless an answer was given already; returns the answer."""
        with self._lock:
            if self.given is not None:
                return self.given
            self.given = response
        self._answer(response)
        return response


def dispatch_answering_on_ack(app: App, request: BoltRequest, answer: Answer) -> BoltResponse:
    """Run `request` through `app`, calling `answer` once: at the first `ack()`, or with
    dispatch's own response. Returns the answer given."""
    ack = AnswerOnAck(answer)
    request.context["ack"] = ack
    return ack.give(app.dispatch(request))


class AnsweringSocketModeHandler(SocketModeHandler):
    """Bolt's Socket Mode handler, acknowledging each envelope as soon as `ack()` is called."""

    def handle(self, client: BaseSocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.time()
        # As Bolt's own handler builds it (creditbot reads no retry headers).
        request = BoltRequest(mode="socket_mode", body=req.payload)
        dispatch_answering_on_ack(
            self.app, request, lambda response: send_response(client, req, response, started)
        )
