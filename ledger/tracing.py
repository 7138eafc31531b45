"""The request id of the work in progress, so one request can be followed from its log
lines into the journal entries and outbox messages it wrote.

An adapter sets it where work comes in (an HTTP request, a scheduler run, a CLI command);
`journal.post` and `outbox.add` store it on what they write. A context variable: each
thread and each asyncio task sees its own, and work handed to another thread carries it
with `bind`; the journal's writer (ledger/journal/writer.py) runs each request of a batch with
the id it was queued with.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

#: Longest request id kept (an incoming X-Request-Id past it is replaced by a new one).
MAX_LENGTH = 128
#: What an incoming request id may hold: it goes into logs and headers as it is.
_ALLOWED = re.compile(rf"[A-Za-z0-9._:@/+=-]{{1,{MAX_LENGTH}}}")

#: The variable itself, for hot paths that set and reset it without a context manager (the
#: journal's writer, once per request of a batch).
request_id_var: ContextVar[str | None] = ContextVar("creditbot_request_id", default=None)


def current_request_id() -> str | None:
    """The request id of the work this thread or task is doing, if any."""
    return request_id_var.get()


def new_request_id(prefix: str = "") -> str:
    """A fresh id: 32 hex characters, after `prefix` (say "job-renewals-")."""
    return prefix + uuid.uuid4().hex


def accepted(incoming: str | None) -> str | None:
    """An id a client sent (X-Request-Id), if it is safe to log and echo as it is."""
    if incoming and _ALLOWED.fullmatch(incoming):
        return incoming
    return None


@contextmanager
def request_scope(request_id: str | None) -> Iterator[str | None]:
    """Run the block with `request_id` as the current one."""
    token = request_id_var.set(request_id)
    try:
        yield request_id
    finally:
        request_id_var.reset(token)


def bind(work: Callable[P, T]) -> Callable[P, T]:
    """`work` that runs with the request id current now, on whichever thread calls it."""
    request_id = request_id_var.get()
    if request_id is None:
        return work

    def bound(*args: P.args, **kwargs: P.kwargs) -> T:
        with request_scope(request_id):
            return work(*args, **kwargs)

    return bound
