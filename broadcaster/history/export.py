"""Write history rows as CSV (a header row, one message a line) or JSON Lines (one message a line, with its
events), row by row: the writer never holds more than the row it writes. Times in Da Nang time, ISO 8601."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TextIO

from broadcaster.clock import local
from broadcaster.exports import write_csv_records, write_jsonl_records
from broadcaster.history.query import HistoryEvent, HistoryRow


class ExportFormat(enum.StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSONL = "jsonl"


CSV_COLUMNS = (
    "id",
    "campaign",
    "run",
    "kind",
    "channel",
    "provider",
    "address",
    "status",
    "hold",
    "attempts",
    "reason",
    "error_code",
    "segments",
    "not_before",
    "created_at",
    "sent_at",
    "final_at",
    "events",
)


def _time(moment: datetime | None) -> str | None:
    return local(moment).isoformat() if moment else None


def event_dict(event: HistoryEvent) -> dict[str, Any]:
    return {**event.as_dict(), "at": _time(event.at)}


def row_dict(row: HistoryRow) -> dict[str, Any]:
    """A row as JSON-ready values (the JSON Lines object, and ``messages --json``)."""
    return {
        "id": row.id,
        "campaign": row.campaign,
        "run": row.run,
        "kind": row.kind,
        "channel": row.channel,
        "provider": row.provider,
        "address": row.address,
        "status": row.status,
        "hold": row.hold,
        "attempts": row.attempts,
        "reason": row.reason,
        "error_code": row.error_code,
        "segments": row.segments,
        "not_before": _time(row.not_before),
        "created_at": _time(row.created_at),
        "sent_at": _time(row.sent_at),
        "final_at": _time(row.final_at),
        "events": [event_dict(e) for e in row.events],
    }


def _events_text(events: list[HistoryEvent]) -> str:
    """One cell for a spreadsheet: ``time type [code] text`` per event, `` | `` between them."""
    return " | ".join(
        " ".join(p for p in (_time(e.at), e.type, e.code and f"[{e.code}]", e.text) if p) for e in events
    )


def write_csv(rows: Iterable[HistoryRow], out: TextIO) -> int:
    return write_csv_records(
        ({**row_dict(row), "events": _events_text(row.events)} for row in rows), CSV_COLUMNS, out
    )


def write_jsonl(rows: Iterable[HistoryRow], out: TextIO) -> int:
    return write_jsonl_records((row_dict(row) for row in rows), out)


WRITERS = {ExportFormat.CSV: write_csv, ExportFormat.JSONL: write_jsonl}
