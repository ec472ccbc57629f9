"""The audit trail's one entry point. The audit issue chains these rows; callers only ever call ``record``
(``record_consent_event`` is its form for a consent ledger event)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from broadcaster.db.models import AuditEntry
from broadcaster.settings import mask_secrets
from consent.models import ConsentEvent


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str | int,
    at: datetime,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Add one entry in the caller's transaction, so the fact and its audit row commit together."""
    entry = AuditEntry(
        at=at,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        reason=reason,
        details=mask_secrets(dict(details or {})),
    )
    session.add(entry)
    return entry


def record_consent_event(session: Session, event: ConsentEvent, **details: Any) -> AuditEntry:
    """The entry of a grant or withdrawal: by whoever recorded it, with its channel, purpose and source."""
    return record(
        session,
        actor=event.recorded_by,
        action=f"consent.{event.action}",
        subject_type="consent_event",
        subject_id=event.id,
        at=event.recorded_at,
        reason=event.reason,
        details={"channel": event.channel, "purpose": event.purpose, "source": event.source, **details},
    )
