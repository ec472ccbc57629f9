"""Log lines: the structured fields of the work at hand, and the JSON format (one object per line).

The dispatcher and the planner set ``campaign_id``, ``run_id``, ``chunk_id`` and ``provider`` for the work
they do (``log_fields``, a context variable, so concurrent tasks and sender threads keep theirs apart); a
line about one message passes ``message_id`` itself with ``extra=``. In text format the lines stay as
they were; in JSON format each line is an object with ``time`` (ISO 8601, UTC), ``level``, ``logger``,
``message`` and every field it carries. Addresses in log lines go through ``channels.masking``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

_fields: ContextVar[Mapping[str, object]] = ContextVar("log_fields", default=MappingProxyType({}))

# What every LogRecord has by itself; anything else on a record came from ``extra=`` or ``log_fields``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


@contextmanager
def log_fields(**fields: object) -> Iterator[None]:
    """Every log line written inside carries ``fields`` (those that are not None), on top of the outer ones.

    Threads do not inherit them: hand work to a thread with ``contextvars.copy_context().run``."""
    token = _fields.set(
        MappingProxyType({**_fields.get(), **{k: v for k, v in fields.items() if v is not None}})
    )
    try:
        yield
    finally:
        _fields.reset(token)


def current_fields() -> Mapping[str, object]:
    return _fields.get()


class FieldsFilter(logging.Filter):
    """Puts the current ``log_fields`` on each record a handler writes; a field passed with ``extra=`` wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _fields.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, then the record's own fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a line comes (a test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # logging must never break the command
            self.handleError(record)


def write_json(handler: logging.Handler) -> logging.Handler:
    """Make ``handler`` write JSON lines with the current ``log_fields`` (Celery's handlers, a test's)."""
    handler.setFormatter(JsonFormatter())
    if not any(isinstance(f, FieldsFilter) for f in handler.filters):
        handler.addFilter(FieldsFilter())
    return handler


def configure_logging(log_format: LogFormat) -> None:
    """The CLI process's logs: in ``json``, warnings and errors go to stderr as JSON lines; in ``text``, as
    they always did (Python's last-resort handler: the message alone). Calling it again replaces the
    handler it installed."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    if log_format == "json":
        root.addHandler(write_json(_StderrHandler()))
