"""A 50 MB body to each unauthenticated route of a real `creditbot serve` (issue 10, item 4):
refused before it is read, so the server's memory stays under +50 MB. Three parallel
200 MB POSTs once took it from 116 MB to 1.6 GB."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api_server import Server, creditbot
from tests.support.raw_http import MIB, memory_kib, post_huge

ROUTES = ("/slack/events", "/stripe/webhook", "/v1/messages")
BODY = 50 * MIB

#: Slack and Stripe configured, so both routes would read and check what they are sent.
ENV = {
    "SLACK_SIGNING_SECRET": "edges-signing-secret",
    "SLACK_BOT_TOKEN": "xoxb-edges",
    "SLACK_API_URL": "http://127.0.0.1:9/api/",
    "STRIPE_WEBHOOK_SECRET": "whsec_edges",
    "STRIPE_SECRET_KEY": "sk_test_edges",
    "STRIPE_API_BASE": "http://127.0.0.1:9",
}


@pytest.fixture
def server(tmp_path):
    url = f"sqlite:///{tmp_path / 'creditbot.db'}"
    assert creditbot("db", "upgrade", database_url=url).returncode == 0
    with Server(url, env=ENV) as server:
        yield server


def test_a_50_mb_body_to_each_unauthenticated_route_leaves_memory_under_50_mb(server):
    pid = server.process.pid
    with httpx.Client(base_url=server.url, timeout=20) as http:
        for path in ROUTES:  # each route's code loaded before the baseline
            assert 400 <= http.post(path, content=b"{}").status_code < 500
    before = memory_kib(pid, "VmRSS")
    answers = {}
    for path in ROUTES:
        for chunked in (False, True):
            answers[path, chunked] = post_huge(server.port, path, BODY, chunked=chunked)
    peak = memory_kib(pid, "VmHWM")  # the most the process ever held, sampled by Linux
    assert (peak - before) / 1024 < 50, f"from {before} KiB to a peak of {peak} KiB"
    for (path, chunked), (status, sent) in answers.items():
        # 413 as soon as the declared or streamed size passes the route's limit (or, when
        # the server's close crossed the client's writes, no answer to read: a reset).
        assert status in (413, None), (path, chunked, status)
        assert sent < BODY, (path, chunked, sent)
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
