"""Slow and idle clients of `creditbot serve` (issue 10, item 5): connections are bounded in
number, headers in time and size, bodies in the pause between their bytes; /healthz
answers however many slow connections are open."""

from __future__ import annotations

import httpx
import pytest

from bot.http.connections import MAX_HEADER_BYTES
from tests.support.api_server import Server, creditbot
from tests.support.raw_http import (
    closed_by_server,
    connect,
    head,
    read_answer,
    slow_connections,
    status_of,
)


# Module-scoped: each server is a `creditbot serve` process (seconds to start on a busy
# machine); every test opens its own connections, so the tests can share one.
@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('edges') / 'creditbot.db'}"
    assert creditbot("db", "upgrade", database_url=url).returncode == 0
    return url


def test_healthz_answers_while_hundreds_of_slow_connections_are_open(migrated):
    # 256 open files in all, as a small container gives: the slow connections alone
    # would take every one of them. The server keeps 64 connections at most.
    server = Server(migrated, env={"HTTP_MAX_CONNECTIONS": "64"}, open_files=256)
    with server:
        slow = slow_connections(server.port, 400)
        try:
            assert len(slow) > 256  # the kernel accepted them all; the server sheds them
            for _ in range(3):
                answer = httpx.get(server.url + "/healthz", timeout=20)
                assert answer.status_code == 200
                assert answer.json() == {"status": "ok", "database": "sqlite"}
        finally:
            for sock in slow:
                sock.close()


@pytest.fixture(scope="module")
def impatient(migrated):
    """A server that waits 1 s for headers and between the chunks of a body."""
    env = {"HTTP_READ_TIMEOUT": "1", "STRIPE_WEBHOOK_SECRET": "whsec_edges"}
    with Server(migrated, env=env) as server:
        yield server


def test_a_connection_whose_headers_do_not_come_is_closed(impatient):
    silent = connect(impatient.port)
    slow = slow_connections(impatient.port, 1)[0]
    # After a first request, a second one that stops halfway through its headers.
    kept_alive = connect(impatient.port)
    kept_alive.sendall(head("GET", "/healthz", {}))
    assert status_of(read_answer(kept_alive, timeout=10)) == 200
    kept_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    for sock in (silent, slow, kept_alive):
        assert closed_by_server(sock, timeout=30)
        sock.close()


@pytest.mark.parametrize("path", ["/stripe/webhook", "/v1/messages"])
def test_a_body_that_stops_arriving_is_answered_408(impatient, path):
    sock = connect(impatient.port)
    headers = {"Content-Type": "application/json", "Content-Length": "100"}
    sock.sendall(head("POST", path, headers) + b'{"id": "evt_')
    answer = read_answer(sock, timeout=30)
    sock.close()
    assert status_of(answer) == 408, answer
    assert b'"request_timeout"' in answer


def test_endless_headers_are_refused_with_431(impatient):
    sock = connect(impatient.port)
    start = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: "
    # One byte over what a request head may take, and the head still not finished.
    sock.sendall(start + b"p" * (MAX_HEADER_BYTES + 1 - len(start)))
    answer = read_answer(sock, timeout=30)
    sock.close()
    assert status_of(answer) == 431, answer
    assert b'"headers_too_large"' in answer
