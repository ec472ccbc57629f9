"""The engine's one way to suppress an address: the suppression row, its audit entry, and the stop of the
address's messages not yet written to a provider, all in the caller's transaction (docs/architecture.md §4,
"Suppression").

Every source goes through here: synchronous rejections (``outbox/results.py``), receipts saying the number
does not exist and hard-bounce DSNs (``outbox/delivery_events.py``). The audit entry names the address only
masked (docs/style.md, personal data).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.pending import stop_pending
from channels.base import Channel
from channels.masking import mask_address, mask_text
from consent.policy import ExclusionReason
from consent.suppression import address_key, suppress

SUPPRESS_ACTION = "suppression.added"
ENGINE = "engine"  # the actor of suppressions the providers' answers cause


def audit_subject(channel: str, address: str) -> str:
    """How an entry names a suppressed address: masked, or for a push device token (up to 320 characters,
    past the entry's subject column) the first 16 hex digits of its SHA-256, as the device endpoint's entries
    name it (docs/push.md)."""
    if channel == Channel.PUSH:
        return "device:" + hashlib.sha256(address.encode("utf-8")).hexdigest()[:16]
    return mask_address(address_key(channel, address)) or ""


def suppress_address(
    session: Session,
    *,
    channel: str,
    address: str,
    reason: str,
    source: str,
    now: datetime,
    actor: str = ENGINE,
) -> bool:
    """Suppress ``address`` on ``channel`` for every purpose; returns False when it already was (then no new
    audit entry: one per suppressed address). Its unwritten messages stop either way."""
    added = suppress(session, channel=channel, address=address, reason=reason, source=source, at=now)
    stopped = stop_pending(
        session, channel=channel, address=address, purposes=None, reason=ExclusionReason.SUPPRESSED, now=now
    )
    if added:
        audit.record(
            session,
            actor=actor,
            action=SUPPRESS_ACTION,
            subject_type="address",
            subject_id=audit_subject(channel, address),
            at=now,
            reason=mask_text(reason),  # a provider's reply may quote the address
            details={"channel": channel, "source": source, "stopped_messages": stopped},
        )
    return added
