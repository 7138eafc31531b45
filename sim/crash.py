"""Crashes: the process dies between two commits of a step.

`CrashPoints` counts the commits of the product's sessions. A crash waits (`pending`) for
the next step of its kind; armed there with `k`, it raises `SimCrash` just before the
step's k-th commit: the commits before it stand, that one and everything after are lost, as
if the process had been killed there. A step that finishes with fewer than `k` commits
dies at its end instead, before its caller hears the answer (the charge was made, the
runtime never learned it).

`SimCrash` is a BaseException, so product code that catches `Exception` to log and carry on
(a job's loop over accounts, the scheduler's runner) cannot swallow it: a dead process
does not log.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker


class SimCrash(BaseException):
    """The simulated process died here."""


class CrashPoints:
    def __init__(self) -> None:
        #: Commits made by the product since the simulation started.
        self.commits = 0
        #: A crash waiting for a step of its kind: (k, kind prefix).
        self.pending: tuple[int, str] | None = None
        self._left: int | None = None
        self._hooked: list[sessionmaker[Session]] = []

    def hook(self, sessions: sessionmaker[Session]) -> None:
        """Count (and crash) the commits of sessions made by `sessions`."""
        event.listen(sessions, "before_commit", self._before_commit)
        event.listen(sessions, "after_commit", self._after_commit)
        self._hooked.append(sessions)

    def unhook(self) -> None:
        for sessions in self._hooked:
            event.remove(sessions, "before_commit", self._before_commit)
            event.remove(sessions, "after_commit", self._after_commit)
        self._hooked.clear()

    @property
    def armed(self) -> bool:
        return self._left is not None

    def step_starts(self, kind: str) -> None:
        """Arm the pending crash if this step (`step:...`, `job:...`, ...) is its kind."""
        if self.pending is not None and kind.startswith(self.pending[1]):
            self._left = max(1, self.pending[0])
            self.pending = None

    def disarm(self) -> None:
        self._left = None
        self.pending = None

    def _before_commit(self, _session: Any) -> None:
        if self._left == 1:
            self._left = None
            raise SimCrash("crashed before a commit")

    def _after_commit(self, _session: Any) -> None:
        self.commits += 1
        if self._left is not None:
            self._left -= 1

    def step_ended(self) -> None:
        """The step finished before its armed commit: it dies now, before answering."""
        if self._left is not None:
            self._left = None
            raise SimCrash("crashed after the step's last commit, before it answered")
