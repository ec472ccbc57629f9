"""``subject export``: everything held about one address, as one JSON document the person can be given.

Every column of every row is included (the PDP Law's right of access, docs/domain.md §1.2); a message carries
its delivery events. The export is itself audited, naming the person by the keyed hash only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.subjects import held
from broadcaster.subjects.held import Subject
from consent.erasure import erasures_of

FORMAT = "broadcaster-subject-export/1"


def export(
    session: Session, subject: Subject, *, subject_hash: str, actor: str, now: datetime
) -> dict[str, Any]:
    """The document, with a header saying when and by whom; its audit entry is added in the same transaction."""
    contacts = held.contacts(session, subject)
    messages = held.messages(session, subject, subject_hash=subject_hash)
    consent_events = held.consent_events(session, subject)
    inbox = held.inbox_replies(session, subject)
    inbound = held.inbound_records(session, subject)
    events = held.delivery_events(session, [m.id for m in messages], [r.id for r in inbound])
    sections: dict[str, list[dict[str, Any]]] = {
        "contacts": [row(c) for c in contacts],
        "devices": [row(d) for d in held.devices(session, [c.id for c in contacts])],
        "consent_events": [row(e) for e in consent_events],
        "suppressions": [row(s) for s in held.suppressions(session, subject)],
        "do_not_call": [row(d) for d in held.do_not_call(session, subject)],
        "campaign_exclusions": [row(x) for x in held.exclusions(session, subject)],
        "messages": [
            {**row(m), "delivery_events": [row(e) for e in events if e.message_id == m.id]} for m in messages
        ],
        "inbox_replies": [row(r) for r in inbox],
        "inbound_records": [row(r) for r in inbound],
        "audit_entries": [
            row(a)
            for a in held.audit_entries(
                session,
                subject_hash=subject_hash,
                consent_event_ids=[e.id for e in consent_events],
                inbox_reply_ids=[r.id for r in inbox],
                contact_ids=[c.id for c in contacts],
            )
        ],
        "erasures": [row(t) for t in erasures_of(session, subject_hash)],
        "contact_import_problems": [
            {"import_id": batch.id, "file": batch.filename, **batch.report["problems"][index]}
            for batch, index in held.import_problems(session, subject)
        ],
    }
    counts = {name: len(rows) for name, rows in sections.items()}
    audit.record(
        session,
        actor=actor,
        action="subject.export",
        subject_type=held.AUDIT_SUBJECT_TYPE,
        subject_id=subject_hash,
        at=now,
        details={"channel": subject.channel, "counts": counts},
    )
    header = {
        "format": FORMAT,
        "generated_at": _utc(now),
        "generated_by": actor,
        "subject": {"channel": subject.channel, "address": subject.key},
        "counts": counts,
    }
    return {"header": header, **sections}


def dumps(document: dict[str, Any]) -> str:
    """UTF-8 JSON with Vietnamese as written and keys in a stable order."""
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True, default=_plain) + "\n"


def row(instance: object) -> dict[str, Any]:
    """Every column of a mapped row, by attribute name."""
    mapper = inspect(instance).mapper
    return {attr.key: getattr(instance, attr.key) for attr in mapper.column_attrs}


def _utc(moment: datetime) -> datetime:
    # SQLite hands the stored UTC moment back without its zone.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return _utc(value).isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} in an export")
