"""Stream messages with their events, in keyset pages, masked unless asked otherwise.

Rows are read as plain column tuples (never ORM objects), one page at a time, so a 100,000-message export
holds one page in memory and leaves the session's identity map empty. Events are a message's
``delivery_events`` rows (receipts, bounces, the failed attempts the recorder stores) plus the acceptance,
derived from ``sent_at`` / ``provider_ref`` (no row is written per accepted attempt).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster import masking
from broadcaster.db.models import DeliveryEventRow, Message
from broadcaster.history.filters import HistoryFilter

PAGE_SIZE = 500
ACCEPTED = "accepted"  # the derived event: the provider took the message
# Shown instead of an address retention removed (the message is still found through its keyed hash).
ADDRESS_REMOVED = "(địa chỉ đã xoá theo thời hạn lưu trữ)"


@dataclass(frozen=True)
class HistoryEvent:
    at: datetime | None
    type: str  # channels.base.EventType values, vocabulary.ATTEMPT_FAILED, or ACCEPTED
    provider: str
    code: str | None
    text: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat() if self.at else None,
            "type": self.type,
            "provider": self.provider,
            "code": self.code,
            "text": self.text,
        }


@dataclass(frozen=True)
class HistoryRow:
    id: int
    campaign: str | None
    run: int | None
    kind: str
    channel: str
    provider: str
    address: str
    status: str
    hold: bool
    attempts: int
    reason: str | None
    error_code: str | None
    segments: int | None
    not_before: datetime | None
    created_at: datetime
    sent_at: datetime | None
    final_at: datetime | None
    events: list[HistoryEvent] = field(default_factory=list)


_COLUMNS = (
    Message.id,
    Message.campaign_id,
    Message.run_id,
    Message.kind,
    Message.channel,
    Message.provider,
    Message.address,
    Message.status,
    Message.hold,
    Message.attempts,
    Message.reason,
    Message.error_code,
    Message.segments,
    Message.not_before,
    Message.created_at,
    Message.sent_at,
    Message.final_at,
    Message.provider_ref,
    Message.redacted_at,
)


def iter_history(
    session: Session,
    filters: HistoryFilter,
    *,
    mask: bool = True,
    newest_first: bool = False,
    limit: int | None = None,
    page_size: int = PAGE_SIZE,
    start_after: int | None = None,
) -> Iterator[HistoryRow]:
    """Every message ``filters`` selects, by id (``newest_first``: descending), with its events in time
    order. Addresses and provider texts are masked unless ``mask`` is False (the caller checked the role
    and audits it: ``masking.must_mask`` / ``record_unmasked``). ``start_after``: the id a previous page ended
    with (a keyset page of the web's table: fast at any depth)."""
    base = select(*_COLUMNS).where(*filters.clauses())
    order = Message.id.desc() if newest_first else Message.id
    last: int | None = start_after
    left = limit
    while left is None or left > 0:
        query = base
        if last is not None:
            query = query.where(Message.id < last if newest_first else Message.id > last)
        size = page_size if left is None else min(page_size, left)
        page = session.execute(query.order_by(order).limit(size)).all()
        if not page:
            return
        events = _events_of(session, [row.id for row in page], mask=mask)
        for row in page:
            yield _row(row, events.get(row.id, []), mask=mask)
        last = page[-1].id
        if left is not None:
            left -= len(page)
        if len(page) < size:
            return


def _events_of(session: Session, ids: list[int], *, mask: bool) -> dict[int, list[HistoryEvent]]:
    found: dict[int, list[HistoryEvent]] = defaultdict(list)
    rows = session.execute(
        select(
            DeliveryEventRow.message_id,
            DeliveryEventRow.occurred_at,
            DeliveryEventRow.recorded_at,
            DeliveryEventRow.type,
            DeliveryEventRow.provider,
            DeliveryEventRow.error_code,
            DeliveryEventRow.status_text,
        )
        .where(DeliveryEventRow.message_id.in_(ids))
        .order_by(DeliveryEventRow.id)
    )
    for message_id, occurred, recorded, kind, provider, code, text in rows:
        if message_id is None:
            continue  # (the query asks for message ids; the column is nullable for unmatched inbound)
        shown = masking.mask_text(text) if mask and text else text
        found[message_id].append(HistoryEvent(occurred or recorded, kind, provider, code, shown))
    return found


def _row(row: object, stored: list[HistoryEvent], *, mask: bool) -> HistoryRow:
    values = row._mapping  # type: ignore[attr-defined]
    events = list(stored)
    if values["sent_at"] is not None:
        # The provider's reference (a Message-ID we made, an SMS concatenation reference) names no person.
        events.append(
            HistoryEvent(values["sent_at"], ACCEPTED, values["provider"], None, values["provider_ref"])
        )
    events.sort(key=lambda e: (e.at is None, e.at or values["created_at"]))
    reason = values["reason"]
    return HistoryRow(
        id=values["id"],
        campaign=values["campaign_id"],
        run=values["run_id"],
        kind=values["kind"].value,
        channel=values["channel"],
        provider=values["provider"],
        address=_address(values["address"], redacted=values["redacted_at"] is not None, mask=mask),
        status=values["status"].value,
        hold=values["hold"],
        attempts=values["attempts"],
        reason=masking.mask_text(reason) if mask and reason else reason,
        error_code=values["error_code"],
        segments=values["segments"],
        not_before=values["not_before"],
        created_at=values["created_at"],
        sent_at=values["sent_at"],
        final_at=values["final_at"],
        events=events,
    )


def _address(address: str | None, *, redacted: bool, mask: bool) -> str:
    if redacted or not address:
        return ADDRESS_REMOVED
    return (masking.mask_address(address) or "") if mask else address
