"""Waiting for something another thread or process does (no timing is asserted)."""

from __future__ import annotations

import time
from typing import Any


def wait_until(predicate: Any, timeout: float = 30.0) -> Any:
    """Poll until `predicate()` is truthy; returns its value (or fails the test).

    The deadline is generous on purpose: it only decides how long a broken test takes to
    fail, while a thread or process of a passing one may wait seconds for a core when
    both are busy with test workers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")
