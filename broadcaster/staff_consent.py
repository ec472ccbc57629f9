"""Staff record that a person withdrew consent (a service desk, a letter): the ledger event, its audit entry
and the stop of the person's unsent messages, in the caller's transaction — one path for the CLI's
``consent withdraw`` and the web's opt-out form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.pending import stop_withdrawn
from consent import ledger
from consent.models import ConsentEvent


@dataclass(frozen=True)
class Withdrawal:
    event: ConsentEvent
    stopped: int  # messages not yet sent that the withdrawal stopped


def withdraw_by_staff(
    session: Session,
    *,
    channel: str,
    address: str,
    purpose: str,
    reason: str,
    recorded_by: str,
    at: datetime,
    notice_version: str | None = None,
    evidence: str | None = None,
) -> Withdrawal:
    event = ledger.withdraw(
        session,
        channel=channel,
        address=address,
        purpose=purpose,
        source="staff",
        notice_version=notice_version,
        evidence=evidence,
        reason=reason,
        recorded_by=recorded_by,
        at=at,
    )
    audit.record_consent_event(session, event)
    return Withdrawal(event, stop_withdrawn(session, event))
