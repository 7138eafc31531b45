"""Junk sent to /slack/events (issue 10, item 6): the signature is checked before anything
reads the body, so unsigned junk is a quiet 401, signed junk a 400, and neither leaves a
traceback in the log or changes anything."""

from __future__ import annotations

import json
import logging
import time
from urllib.parse import urlencode

import pytest

from tests.support.api_helpers import snapshot
from tests.support.slack_harness import (  # noqa: F401  (fixtures)
    context,
    fake_slack,
    ids,
    signed_headers,
    slack,
)

FORM = "application/x-www-form-urlencoded"

UNSIGNED = [
    pytest.param(b"xxxx", {"Content-Type": FORM}, id="xxxx"),
    pytest.param(b"payload=notjson", {"Content-Type": FORM}, id="payload=notjson"),
    pytest.param(b"\xff\xfe\xfd", {"Content-Type": "application/json"}, id="xff-body"),
    pytest.param(
        b"{}",
        {"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=abc"},
        id="timestamp-abc",
    ),
    pytest.param(
        b"{}",
        {"X-Slack-Request-Timestamp": "\u00b2".encode("latin-1"), "X-Slack-Signature": "v0=abc"},
        id="timestamp-superscript-two",
    ),
    pytest.param(
        b"{}", {"X-Slack-Request-Timestamp": "1" * 40, "X-Slack-Signature": "v0="}, id="huge-ts"
    ),
    pytest.param(b"{}", {"X-Slack-Signature": "v0=abc"}, id="no-timestamp"),
    pytest.param(b"{}", {"X-Slack-Request-Timestamp": str(int(time.time()))}, id="no-signature"),
    pytest.param(b"", {}, id="nothing"),
]


def no_traceback(records: list[logging.LogRecord]) -> None:
    for record in records:
        assert record.exc_info is None, record.getMessage()
        assert "Traceback" not in record.getMessage()


def _unchanged(slack, fake_slack):  # noqa: F811
    return snapshot(slack.context.sessions), [(c.method, c.args) for c in fake_slack.calls]


@pytest.mark.parametrize(("body", "headers"), UNSIGNED)
def test_unsigned_junk_is_a_quiet_401(slack, fake_slack, caplog, body, headers):  # noqa: F811
    before = _unchanged(slack, fake_slack)
    with caplog.at_level(logging.DEBUG):
        response = slack.http.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_signature"
    no_traceback(caplog.records)
    assert _unchanged(slack, fake_slack) == before


SIGNED_JUNK = [
    pytest.param(b"payload=notjson", FORM, id="payload=notjson"),
    pytest.param(b"\xff\xfe\xfd", "application/json", id="xff-body"),
    pytest.param(b"[1, 2, 3]", "application/json", id="json-array"),
    pytest.param(b'"text"', "application/json", id="json-string"),
    pytest.param(b"{not json", "application/json", id="broken-json"),
    pytest.param(b"[" * 100_000, "application/json", id="deeply-nested"),
    pytest.param(urlencode({"payload": "[1]"}).encode(), FORM, id="payload-array"),
    pytest.param(
        json.dumps({"type": "event_callback", "authorizations": "x"}).encode(),
        "application/json",
        id="authorizations-string",
    ),
    pytest.param(
        json.dumps({"type": "block_actions", "enterprise": 5}).encode(),
        "application/json",
        id="enterprise-number",
    ),
]


@pytest.mark.parametrize(("body", "content_type"), SIGNED_JUNK)
def test_signed_junk_is_a_400(slack, fake_slack, caplog, body, content_type):  # noqa: F811
    before = _unchanged(slack, fake_slack)
    with caplog.at_level(logging.DEBUG):
        response = slack.http.post(
            "/slack/events", content=body, headers=signed_headers(body, content_type)
        )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "malformed_request"
    no_traceback(caplog.records)
    assert _unchanged(slack, fake_slack) == before


def test_a_genuine_request_still_goes_through(slack):  # noqa: F811
    body = json.dumps({"type": "url_verification", "challenge": "c-1", "token": "t"})
    response = slack.http.post(
        "/slack/events",
        content=body.encode(),
        headers=signed_headers(body.encode(), "application/json"),
    )
    assert response.status_code == 200 and response.json() == {"challenge": "c-1"}
