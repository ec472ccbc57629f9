"""The audit chain's arithmetic: the canonical encoding of an entry and its SHA-256 (docs/audit.md).

An entry's hash covers its position (``id``), every field a reader sees and the previous entry's hash, so
changing, removing, inserting or reordering a row breaks the chain at that row. The encoding never changes:
entries written years ago must verify with the code of today.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

# The ``prev_hash`` of entry 1.
GENESIS = "0" * 64
# What ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)`` builds on
# every call, built once: the same bytes, and verifying a million entries no longer makes a million encoders.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def json_value(value: Any) -> Any:
    """``value`` as it reads back from a JSON column (tuples become lists, keys strings): hash what is stored."""
    return json.loads(json.dumps(value, ensure_ascii=False, allow_nan=False))


def canonical(
    *,
    id: int,
    at: datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    reason: str | None,
    details: Any,
    prev_hash: str,
) -> bytes:
    """UTF-8 JSON, keys sorted, no spaces; the time in UTC with microseconds."""
    fields = {
        "id": id,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "reason": reason,
        "details": details,
        "prev_hash": prev_hash,
    }
    return _ENCODER.encode(fields).encode()


def entry_hash(**fields: Any) -> str:
    """The hex SHA-256 of ``canonical(**fields)``."""
    return hashlib.sha256(canonical(**fields)).hexdigest()


def row_hash(row: Any) -> str:
    """The hash a stored row (an ``AuditEntry`` or a result row with the same names) should carry."""
    return entry_hash(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        reason=row.reason,
        details=row.details,
        prev_hash=row.prev_hash,
    )
