"""Inbound traffic from providers: store the raw record first (committed before the provider is answered),
then turn it into normalised, idempotent delivery events that move message statuses.

A receipt can arrive before the part it refers to is stored (the SMSC answered faster than we committed the
submit_sm_resp). Such a record stays unprocessed and is retried after each window and by the tick; records
that still match nothing after ``UNMATCHED_AFTER`` are closed as unmatched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.clock import Clock
from broadcaster.db.bulk import insert_ignoring_conflicts
from broadcaster.db.models import DeliveryEventRow, InboundRecord, Message, MessagePart
from broadcaster.outbox.status import MessageStatus, sources_for
from channels.base import DeliveryEvent, EventType
from channels.sms.receipts import id_variants, normalize_id, parse_deliver_sm

log = logging.getLogger(__name__)

UNMATCHED_AFTER = timedelta(minutes=10)

PART_STATE = {EventType.DELIVERED: "delivered", EventType.FAILED: "failed", EventType.EXPIRED: "expired"}


def parse_record(record: InboundRecord) -> list[DeliveryEvent]:
    if record.channel == "sms":
        return [parse_deliver_sm(record.payload)]
    if record.channel == "email":
        from channels.email.dsn import parse_dsn

        return parse_dsn(record.payload["dsn"], envelope_recipient=record.payload.get("envelope_recipient"))
    raise ValueError(f"no parser for inbound records of channel {record.channel!r}")


def store_raw(
    session: Session, *, provider: str, channel: str, payload: dict[str, Any], now: datetime
) -> InboundRecord:
    record = InboundRecord(provider=provider, channel=channel, received_at=now, payload=payload)
    session.add(record)
    session.flush()
    return record


def inbound_batch_handler(
    sessions: sessionmaker[Session], *, provider: str, channel: str, clock: Clock
) -> Callable[[list[dict[str, Any]]], None]:
    """The callback an adapter calls with what it received: store the raw records and apply them, in one commit.

    Returning means committed; the adapter answers the provider only then. Everything that queued up while
    the previous commit ran goes into the next one (a group commit). Each record is applied in a savepoint:
    if that fails, its raw record still commits and the tick retries it (e.g. its part is not stored yet).
    """

    def handle(payloads: list[dict[str, Any]]) -> None:
        now = clock.now()
        with sessions.begin() as session:
            records = [
                InboundRecord(provider=provider, channel=channel, received_at=now, payload=p)
                for p in payloads
            ]
            session.add_all(records)
            session.flush()
            for record in records:
                try:
                    with session.begin_nested():
                        process_record(session, record, now=now)
                except Exception:  # the raw record still commits; the tick retries it, the reader lives on
                    log.exception("inbound record %s from %s could not be applied yet", record.id, provider)

    return handle


def inbound_handler(
    sessions: sessionmaker[Session], *, provider: str, channel: str, clock: Clock
) -> Callable[[dict[str, Any]], None]:
    """The one-record form of :func:`inbound_batch_handler`."""
    batch = inbound_batch_handler(sessions, provider=provider, channel=channel, clock=clock)

    def handle(payload: dict[str, Any]) -> None:
        batch([payload])

    return handle


def process_pending(
    session: Session,
    *,
    now: datetime,
    provider: str | None = None,
    limit: int = 1000,
    received_after: datetime | None = None,
    received_before: datetime | None = None,
) -> int:
    """Retry unprocessed records (oldest first); returns how many got settled."""
    query = (
        select(InboundRecord)
        .where(InboundRecord.processed_at.is_(None))
        .order_by(InboundRecord.id)
        .limit(limit)
    )
    if provider is not None:
        query = query.where(InboundRecord.provider == provider)
    if received_after is not None:
        query = query.where(InboundRecord.received_at >= received_after)
    if received_before is not None:
        query = query.where(InboundRecord.received_at <= received_before)
    done = 0
    for record in session.scalars(query):
        if process_record(session, record, now=now):
            done += 1
    return done


def process_record(session: Session, record: InboundRecord, *, now: datetime) -> bool:
    """Apply a record's events; True when it is settled (applied, a no-op, or given up as unmatched)."""
    events = parse_record(record)
    matched_all = True
    outcomes: list[str] = []
    for event in events:
        result = apply_event(session, record=record, event=event, now=now)
        outcomes.append(result)
        matched_all &= result != "unmatched"
    if matched_all or now - record.received_at > UNMATCHED_AFTER:
        record.processed_at = now
        record.outcome = ",".join(outcomes)[:200]
        return True
    return False


def apply_event(session: Session, *, record: InboundRecord, event: DeliveryEvent, now: datetime) -> str:
    if event.type == EventType.INBOUND:
        _store_event(
            session,
            record=record,
            event=event,
            message_id=None,
            now=now,
            key=f"{record.provider}:mo:{record.id}",
        )
        return "inbound"
    if event.type in (EventType.ACCEPTED, EventType.UNKNOWN) and event.provider_id is None:
        return "ignored"
    part = _find_part(session, record.provider, event.provider_id) if record.channel == "sms" else None
    message_id = part.message_id if part is not None else _email_message(session, event)
    if message_id is None:
        return "unmatched"
    key = (
        f"{record.provider}:{normalize_id(event.provider_id)}:{part.number if part else 0}:{event.type.value}"
    )
    if not _store_event(session, record=record, event=event, message_id=message_id, now=now, key=key):
        return "duplicate"
    if event.type not in PART_STATE:
        return event.type.value
    if part is not None:
        part.state = PART_STATE[event.type]
        part.updated_at = now
        session.flush()
    _settle_message(session, message_id=message_id, event=event, now=now)
    return event.type.value


def _find_part(session: Session, provider: str, provider_id: str | None) -> MessagePart | None:
    variants = id_variants(provider_id)
    if not variants:
        return None
    parts = list(
        session.scalars(
            select(MessagePart).where(MessagePart.provider == provider, MessagePart.provider_id.in_(variants))
        )
    )
    exact = normalize_id(provider_id)
    parts.sort(key=lambda p: (p.provider_id != exact, -p.id))  # an exact match first, then the newest
    return parts[0] if parts else None


def _email_message(session: Session, event: DeliveryEvent) -> int | None:
    message_id = event.raw.get("message_id") if event.raw else None
    if isinstance(message_id, int) and session.get(Message, message_id) is not None:
        return message_id
    return None


def _store_event(
    session: Session,
    *,
    record: InboundRecord,
    event: DeliveryEvent,
    message_id: int | None,
    now: datetime,
    key: str,
) -> bool:
    before = session.scalar(select(DeliveryEventRow.id).where(DeliveryEventRow.dedupe_key == key))
    if before is not None:
        return False
    insert_ignoring_conflicts(
        session,
        DeliveryEventRow.__table__,  # type: ignore[arg-type]
        [
            {
                "dedupe_key": key,
                "message_id": message_id,
                "inbound_id": record.id,
                "provider": record.provider,
                "provider_id": normalize_id(event.provider_id),
                "type": event.type.value,
                "status_text": event.status_text,
                "error_code": event.error_code,
                "occurred_at": event.occurred_at,
                "recorded_at": now,
            }
        ],
        conflict=["dedupe_key"],
    )
    return True


def _settle_message(session: Session, *, message_id: int, event: DeliveryEvent, now: datetime) -> None:
    """A long SMS is delivered when all its parts are; any failed part fails the message."""
    message = session.get(Message, message_id)
    assert message is not None
    if event.type == EventType.DELIVERED:
        if message.channel == "sms":
            states = list(
                session.scalars(select(MessagePart.state).where(MessagePart.message_id == message_id))
            )
            message.parts_delivered = sum(1 for s in states if s == "delivered")
            if message.parts_delivered < max(message.parts_total, len(states)):
                return
        target = MessageStatus.DELIVERED
    elif event.type == EventType.FAILED:
        target = MessageStatus.PERMANENT_FAILURE
    else:
        target = MessageStatus.TEMPORARY_FAILURE
    reason = f"{event.status_text or event.type.value}" + (
        f" err:{event.error_code}" if event.error_code else ""
    )
    session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status.in_(sources_for(target)))
        .values(status=target, final_at=now, reason=None if target == MessageStatus.DELIVERED else reason)
    )
