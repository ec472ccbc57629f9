"""The audit trail's entry point: callers call ``record`` (``record_consent_event`` is its form for a consent
ledger event); only ``audit.deliveries``, on the send's critical path, queues its entries directly, as they
hold nothing but ids, statuses and hashes. Entries are hash-chained as the caller's transaction commits
(``audit.append``, docs/audit.md).

No entry carries a plaintext phone number or e-mail address: a chained row can never be rewritten, so an
address in it would survive the person's erasure (docs/domain.md §1.2). Entries name a person's records by id
(a consent event, an inbox reply) or by the keyed subject hash; ``record`` masks what slips through anyway, in
the reason and in any detail whose value is an address.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from broadcaster.audit.append import queue_entry
from broadcaster.audit.chain import json_value
from broadcaster.settings_sections import mask_secrets
from channels.masking import mask_address, mask_text
from consent.models import ConsentEvent

# A detail that is, as a whole, a phone number or an e-mail address (values such as hashes or file names are
# left alone; free text is the reason's, masked whole).
_ADDRESS = re.compile(r"\+?\d{9,15}|[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


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
) -> None:
    """Add one entry in the caller's transaction, so the fact and its audit row commit together (or neither)."""
    queue_entry(
        session,
        at=at,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        reason=mask_text(reason),
        details=json_value(_mask_addresses(mask_secrets(dict(details or {})))),
    )


def _mask_addresses(value: Any) -> Any:
    if isinstance(value, str):
        return mask_address(value) if _ADDRESS.fullmatch(value.strip()) else value
    if isinstance(value, Mapping):
        return {key: _mask_addresses(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_addresses(item) for item in value]
    return value


def record_consent_event(session: Session, event: ConsentEvent, **details: Any) -> None:
    """The entry of a grant or withdrawal: by whoever recorded it, with its channel, purpose and source."""
    record(
        session,
        actor=event.recorded_by,
        action=f"consent.{event.action}",
        subject_type="consent_event",
        subject_id=event.id,
        at=event.recorded_at,
        reason=event.reason,
        details={"channel": event.channel, "purpose": event.purpose, "source": event.source, **details},
    )
