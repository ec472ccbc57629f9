"""The entries for sends and delivery outcomes (docs/audit.md, "What is recorded").

One ``delivery.window`` entry per recorded sending window and one ``delivery.results`` entry per applied batch
of results, each written in the transaction that changes the messages' statuses, and each carrying, per
message, what an auditor needs without re-reading the (mutable, later redacted) messages table: the id, the
new status and, for a send, the keyed hash of the address and the hash of the content.

Whether they are written is ``[audit] deliveries``, carried by the session (``db.engine.AUDIT_DELIVERIES``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from broadcaster.audit.append import queue_entry
from broadcaster.db.engine import AUDIT_DELIVERIES
from consent.suppression import address_key

WINDOW = "delivery.window"
RESULTS = "delivery.results"


def deliveries_audited(session: Session) -> bool:
    return bool(session.info.get(AUDIT_DELIVERIES, True))


class AddressHasher:
    """``hashes.address_hash`` for many addresses under one key: the HMAC's keyed state is built once and
    copied per address (the same digest, a fraction of the work on a 10,000-message send)."""

    def __init__(self, key: str) -> None:
        self._keyed = hmac.new(key.encode(), digestmod=hashlib.sha256) if key else None

    def __call__(self, channel: str, address: str) -> str | None:
        if self._keyed is None:
            return None
        mac = self._keyed.copy()
        mac.update(address_key(channel, address).encode())
        return mac.hexdigest()


def record_window(
    session: Session,
    *,
    actor: str,
    chunk_id: int,
    provider: str,
    channel: str,
    run_id: int | None,
    campaign_id: str | None,
    messages: Sequence[Sequence[Any]],
    at: datetime,
) -> None:
    """``messages``: ``[id, status, address hash, content hash]`` per message the window recorded."""
    details = {"provider": provider, "channel": channel, "run_id": run_id, "campaign_id": campaign_id}
    _entry(session, WINDOW, actor, "chunk", chunk_id, at, details, messages)


def record_results(
    session: Session,
    *,
    actor: str,
    provider: str | None,
    subject_type: str,
    subject_id: str | int,
    messages: Sequence[Sequence[Any]],
    at: datetime,
) -> None:
    """``messages``: ``[id, new status, event type]`` per message whose status the batch changed."""
    _entry(session, RESULTS, actor, subject_type, subject_id, at, {"provider": provider}, messages)


def _entry(
    session: Session,
    action: str,
    actor: str,
    subject_type: str,
    subject_id: str | int,
    at: datetime,
    details: dict[str, Any],
    messages: Sequence[Sequence[Any]],
) -> None:
    if not messages or not deliveries_audited(session):
        return
    # Queued as ``record`` would, without its masking walk and JSON round trip: these details are built here
    # from ids, statuses, hashes and provider names only (no address can be in them), already as JSON reads
    # them back. They are on the send's critical path: a window's slots wait for its record.
    queue_entry(
        session,
        at=at,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        reason=None,
        details={**details, "messages": [list(m) for m in messages]},
    )
