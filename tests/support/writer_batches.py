"""Deterministic batches of the journal's writer (no sleeps, no timed assertions): hold the
writer in a first request until the others have queued behind it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ledger.db import make_engine
from ledger.journal.writer import JournalWriter, Request
from ledger.migrate import upgrade


class Held:
    """A first request that keeps the writer busy until released, so that everything
    submitted meanwhile waits and forms the next batch. (Submitted from an event loop of
    its own: on SQLite a batch runs on the loop of its requests.) On PostgreSQL it holds
    the stripe of `order`: give the account of the requests to hold back."""

    def __init__(self, writer: JournalWriter, order: int = 0) -> None:
        self.writer = writer
        self.started = threading.Event()
        self.release = threading.Event()
        held = Request(self._hold, order=order)
        self.thread = threading.Thread(target=lambda: asyncio.run(writer.run(held)))
        self.thread.start()
        assert self.started.wait(30)

    def _hold(self, session):
        self.started.set()
        assert self.release.wait(30)

    def until_queued(self, count: int) -> None:
        """Release the writer once `count` requests wait behind the held one."""
        while self.writer.waiting() < count:
            threading.Event().wait(0.001)
        self.release.set()
        self.thread.join(30)


def twin_url(db_url: str, request: pytest.FixtureRequest) -> str:
    """A second empty database of the kind of `db_url` (the `db_url` fixture's), for
    running the same requests one transaction each."""
    if request.node.callspec.params["db_url"] == "sqlite":
        url = db_url.replace("creditbot.db", "one-at-a-time.db")
        upgrade(make_engine(url))
        return url
    return request.getfixturevalue("pg_url")
