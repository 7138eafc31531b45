"""Logs: one JSON object per line for machines, or plain lines on a terminal.

LOG_FORMAT picks: `json`, `text`, or `auto` (the default: text when stderr is a terminal,
JSON otherwise, as under systemd, Docker or Kubernetes). LOG_LEVEL sets the level (info).
Every line carries the request id of the work it belongs to (ledger/tracing.py): the HTTP
request's (X-Request-Id), the scheduler run's, or that of the alert being delivered, so one
id finds a request's lines, its journal entries and its outbox messages.

uvicorn's loggers go through the same handler (uvicorn is told not to set up its own), and
its access log is replaced by one line per request written by bot/http/request_ids.py.
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

from ledger.tracing import current_request_id

FORMATS = ("auto", "json", "text")
_HANDLER_NAME = "creditbot"


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request id] message`: what a person reads on a terminal (the
    fields JSON lines carry besides are in the message's own words)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s%(rid)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.rid = f" [{rid}]" if rid else ""
        return super().format(record)


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "{asctime}{levelname}{name}{message}{request_id}{process}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        reserved_attrs=[*_reserved(), "color_message"],
        json_ensure_ascii=False,
    )


def _reserved() -> list[str]:
    from pythonjsonlogger.core import RESERVED_ATTRS

    return list(RESERVED_ATTRS)


def wants_json(log_format: str, stream: IO[Any]) -> bool:
    if log_format == "json":
        return True
    if log_format == "text":
        return False
    return not (hasattr(stream, "isatty") and stream.isatty())


def configure_logging(
    log_format: str = "auto", level: str = "info", stream: IO[Any] | None = None
) -> logging.Handler:
    """Send every log record (creditbot's, uvicorn's, APScheduler's) to one handler on
    stderr, as JSON or text. Calling it again replaces that handler."""
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(RequestIdFilter())
    as_json = wants_json(log_format, stream)
    handler.setFormatter(json_formatter() if as_json else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # On a terminal serve's start-up report keeps its own uvicorn-like lines
    # (bot/http/startup_report.py); in JSON everything is one stream of objects.
    names = ["uvicorn", "uvicorn.error", "uvicorn.access"] + (["creditbot.doctor"] * as_json)
    for name in names:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    global _json
    _json = as_json
    return handler


_json = False


def json_configured() -> bool:
    """Whether `configure_logging` set up JSON lines in this process."""
    return _json and any(h.get_name() == _HANDLER_NAME for h in logging.getLogger().handlers)
