"""SQLite: checkpoints in the background, off the journal writer's path.

In WAL mode a commit appends to the write-ahead log; a checkpoint copies the log back into
the database file and syncs it to disk. By default the connection whose commit crosses
1,000 pages of log runs the checkpoint inside that commit, so one request in a few hundred
waits for two fsyncs. The journal's writer turns that off on its connection, and this
thread checkpoints instead, passively (it never blocks a writer), a few times a second
while the writer is connected. It also lets go of the writer's connection once the
writer has been idle for a while (`idle` callback), and then ends itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import Engine

#: Seconds between checkpoints while the writer is busy.
INTERVAL = 0.25


class Checkpointer:
    def __init__(
        self, engine: Engine, idle: Callable[[], bool], interval: float = INTERVAL
    ) -> None:
        """`idle()` is asked after each checkpoint: True when the writer let go of its
        connection (this thread then ends until `start` is called again)."""
        self._engine = engine
        self._idle = idle
        self._interval = interval
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(self._stop,), name="sqlite-checkpoints", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    def _run(self, stop: threading.Event) -> None:
        raw = self._engine.raw_connection()
        try:
            while not stop.wait(self._interval):
                raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                if self._idle():
                    with self._lock:
                        if self._thread is threading.current_thread():
                            self._thread = None
                    return
        finally:
            # A last checkpoint, so the log does not outlive the busy spell.
            raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            raw.close()
