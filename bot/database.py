"""Whether the configured database can be used: there, reachable, and migrated to the
revision this code expects. Each way it cannot is one sentence and what to do about it,
said the same by every `creditbot` command, `creditbot doctor` and `creditbot serve`.

A SQLite file that does not exist is reported without connecting to it: connecting
would leave an empty file behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from ledger.migrate import current_revision, head_revision, known_revision

UPGRADE_HINT = "run `creditbot db upgrade`"


@dataclass(frozen=True)
class DatabaseState:
    """What was found; `problem` and `hint` are None when the database is ready."""

    url: str
    revision: str | None = None
    head: str | None = None
    problem: str | None = None
    hint: str | None = None

    @property
    def ready(self) -> bool:
        return self.problem is None


def shown_url(url: URL) -> str:
    """The URL as people may see it: the password hidden."""
    return url.render_as_string(hide_password=True)


def sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL names; None for other databases and in-memory SQLite."""
    if url.get_backend_name() != "sqlite":
        return None
    name = url.database or ""
    if name in ("", ":memory:") or name.startswith("file:") or url.query.get("mode") == "memory":
        return None
    return Path(name)


def first_line(exc: BaseException) -> str:
    """The driver's own words, without SQLAlchemy's SQL and background link."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(inner).strip().splitlines()
    return text[0].strip() if text else type(inner).__name__


def unreachable(url: URL, exc: BaseException) -> DatabaseState:
    where = shown_url(url)
    if url.get_backend_name() == "sqlite":
        hint = f"check that the file is a creditbot database you may write, or {UPGRADE_HINT}"
    else:
        hint = "check that the database server runs and DATABASE_URL names it (host, port, user)"
    return DatabaseState(where, problem=f"cannot use the database at {where}: {first_line(exc)}",
                         hint=hint)  # fmt: skip


def check_database(engine: Engine) -> DatabaseState:
    """Is the database there, reachable and at the newest revision?"""
    url = engine.url
    where = shown_url(url)
    head = head_revision()
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return DatabaseState(where, head=head, problem=f"no database at {path}",
                             hint=f"{UPGRADE_HINT} to create it")  # fmt: skip
    try:
        with engine.connect() as connection:
            revision = current_revision(connection)
    except DBAPIError as exc:
        return unreachable(url, exc)
    if revision is None:
        return DatabaseState(where, None, head, f"the database at {where} has no tables yet",
                             f"{UPGRADE_HINT} to create them")  # fmt: skip
    if not known_revision(revision):
        return DatabaseState(
            where,
            revision,
            head,
            f"the database at {where} is at revision {revision}, newer than this creditbot"
            f" ({head})",
            "run the creditbot version that migrated it",
        )
    if revision != head:
        return DatabaseState(
            where,
            revision,
            head,
            f"the database at {where} is at revision {revision}; this creditbot needs {head}",
            f"{UPGRADE_HINT} (after a backup)",
        )
    return DatabaseState(where, revision, head)
