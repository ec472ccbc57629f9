"""CSV (a header row, one record a line) and JSON Lines (one object a line) written record by record: an
export never holds more than the record it writes. Shared by the delivery history and the audit trail."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO


def write_csv_records(records: Iterable[Mapping[str, Any]], columns: Sequence[str], out: TextIO) -> int:
    """``columns`` of each record, None as an empty cell; returns how many records were written."""
    writer = csv.writer(out)
    writer.writerow(columns)
    written = 0
    for record in records:
        writer.writerow(["" if record[c] is None else record[c] for c in columns])
        written += 1
    return written


def write_jsonl_records(records: Iterable[Mapping[str, Any]], out: TextIO) -> int:
    written = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        written += 1
    return written
