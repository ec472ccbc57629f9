"""Write audit entries found by ``audit.search`` as CSV (a header row, one entry a line, the details as JSON
text) or JSON Lines (one entry a line), entry by entry. Times in Da Nang time, ISO 8601.

Entries hold no plaintext address (``audit.record`` masks what slips through, and a person is named by a
keyed hash), so an export is masked whoever writes it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TextIO

from broadcaster.audit.search import FoundEntry
from broadcaster.clock import local
from broadcaster.exports import write_csv_records, write_jsonl_records

CSV_COLUMNS = ("id", "at", "actor", "action", "subject_type", "subject_id", "reason", "details", "entry_hash")


def entry_dict(entry: FoundEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": local(entry.at).isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "subject_type": entry.subject_type,
        "subject_id": entry.subject_id,
        "reason": entry.reason,
        "details": entry.details,
        "entry_hash": entry.entry_hash,
    }


def write_csv(entries: Iterable[FoundEntry], out: TextIO) -> int:
    """The details as one JSON text cell (keys sorted, so two exports compare line by line)."""
    return write_csv_records(
        (
            {**entry_dict(entry), "details": json.dumps(entry.details, ensure_ascii=False, sort_keys=True)}
            for entry in entries
        ),
        CSV_COLUMNS,
        out,
    )


def write_jsonl(entries: Iterable[FoundEntry], out: TextIO) -> int:
    return write_jsonl_records((entry_dict(entry) for entry in entries), out)
