"""What the bounce listener stored, for ``broadcaster bounces list``: each mail with what it was about and
what became of it; a bounce that matched no message of ours is kept and shown, never dropped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from broadcaster.bounces.intake import CHANNEL, REFUSED_FORGED
from broadcaster.bounces.routes import Kind
from broadcaster.db.models import DeliveryEventRow, InboundRecord
from channels import registry
from channels.masking import mask_email

# Outcomes (broadcaster.outbox.delivery_events) of a bounce that names no message of ours.
UNMATCHED_OUTCOMES = ("unmatched", "empty", "unreadable", "ignored")

STATES = {
    "waiting": "chờ xử lý",
    "unmatched": "không khớp thư nào",
    "empty": "không phải thư báo lỗi (DSN)",
    "unreadable": "không đọc được",
    "ignored": "không khớp thư nào",
    "duplicate": "trùng, đã ghi nhận",
    "matched": "đã khớp",
    "withdrawn": "đã rút đồng ý",
    "forged": "từ chối: mã không hợp lệ",
    "no_token": "từ chối: tiêu đề không có mã",
}


def _unmatched_clause() -> Any:
    return or_(
        InboundRecord.processed_at.is_(None),
        *(InboundRecord.outcome.like(f"%{word}%") for word in UNMATCHED_OUTCOMES),
    )


def stored_mail(session: Session, *, unmatched: bool, limit: int, mask: bool) -> list[dict[str, Any]]:
    """The newest ``limit`` mails the listener stored (only unmatched bounces with ``unmatched``)."""
    query = select(InboundRecord).where(InboundRecord.channel == CHANNEL)
    if unmatched:
        query = query.where(_unmatched_clause())
    records = list(session.scalars(query.order_by(InboundRecord.id.desc()).limit(limit)))
    matched: dict[int, set[int]] = {}
    for inbound_id, message_id in session.execute(
        select(DeliveryEventRow.inbound_id, DeliveryEventRow.message_id).where(
            DeliveryEventRow.inbound_id.in_([r.id for r in records])
        )
    ):
        if inbound_id is not None and message_id is not None:
            matched.setdefault(inbound_id, set()).add(message_id)
    return [_row(record, sorted(matched.get(record.id, ())), mask=mask) for record in records]


def _row(record: InboundRecord, message_ids: list[int], *, mask: bool) -> dict[str, Any]:
    payload = record.payload or {}
    kind = str(payload.get("kind") or Kind.BOUNCE.value)
    recipients: list[str] = []
    statuses: list[str] = []
    if kind == Kind.BOUNCE.value:
        try:
            events = registry.parse_events(registry.inbound_type(CHANNEL), payload)
        except (ValueError, TypeError, KeyError):
            events = []
        recipients = [e.recipient for e in events if e.recipient]
        statuses = [e.status_text for e in events if e.status_text]
    sender = str(payload.get("envelope_from") or "")

    def shown(address: str) -> str:
        return (mask_email(address) or address) if mask and address else address

    return {
        "id": record.id,
        "received_at": _utc(record.received_at),
        "provider": record.provider,
        "kind": kind,
        "from": shown(sender),
        "to": str(payload.get("envelope_to") or ""),  # our own bounce or opt-out address
        "recipients": [shown(r) for r in recipients],
        "status": statuses,
        "messages": message_ids,
        "state": _state(record, kind),
        "outcome": record.outcome,
        "processed_at": _utc(record.processed_at),
        "peer": payload.get("peer"),
    }


def _state(record: InboundRecord, kind: str) -> str:
    outcome = record.outcome or ""
    if kind == Kind.UNSUBSCRIBE.value:
        if outcome.startswith("withdrawn"):
            return "withdrawn"
        return "forged" if outcome == REFUSED_FORGED else "no_token"
    if record.processed_at is None:
        return "waiting"
    words = [part.split(":", 1)[0].strip() for part in outcome.split(",")]
    for word in UNMATCHED_OUTCOMES:
        if word in words:
            return word
    return "duplicate" if words and all(w == "duplicate" for w in words) else "matched"


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite hands the stored UTC moment back without its zone.
    return moment if moment is None or moment.tzinfo is not None else moment.replace(tzinfo=UTC)
