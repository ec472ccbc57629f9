"""Inbound traffic from providers: store the raw record first (committed before the provider is answered),
then turn it into normalised, idempotent delivery events that move message statuses.

A receipt can arrive before the part it refers to is stored (the SMSC answered faster than we committed the
submit_sm_resp). Such a record stays unprocessed and is retried after each window and by the tick; records
that still match nothing after ``UNMATCHED_AFTER`` are closed as unmatched.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import ColumnElement, Table, bindparam, case, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.clock import Clock
from broadcaster.db.bulk import insert_ignoring_conflicts
from broadcaster.db.engine import readers_of
from broadcaster.db.models import DeliveryEventRow, InboundRecord, Message, MessagePart
from broadcaster.outbox.status import MessageStatus, sources_for
from channels import registry
from channels.base import DeliveryEvent, EventType, normalize_provider_id

log = logging.getLogger(__name__)

UNMATCHED_AFTER = timedelta(minutes=10)

# Core tables for executemany updates (the ORM would evaluate every object in the session).
_MESSAGES = cast(Table, Message.__table__)
_PARTS = cast(Table, MessagePart.__table__)
_INBOUND = cast(Table, InboundRecord.__table__)

PART_STATE = {EventType.DELIVERED: "delivered", EventType.FAILED: "failed", EventType.EXPIRED: "expired"}


def parse_record(record: _Stored) -> list[DeliveryEvent]:
    """The events in a stored record, read by the adapter that owns its channel's records (the registry)."""
    return registry.parse_events(registry.inbound_type(record.channel), record.payload)


def inbound_batch_handler(
    sessions: sessionmaker[Session],
    *,
    provider: str,
    channel: str,
    clock: Clock,
    hand_off: Callable[[], None] | None = None,
) -> Callable[[list[dict[str, Any]]], None]:
    """The callback an adapter calls with what it received: store the raw records, in one commit.

    Returning means committed; the adapter answers the provider only then. Everything that queued up while
    the previous commit ran goes into the next one (a group commit). With ``hand_off`` the records are
    applied elsewhere: ``hand_off()`` asks another process to apply what is pending (so the SMPP gateway
    keeps its CPU for the wire). Without it they are applied here, in a savepoint: if that fails, the raw
    records still commit and the tick retries them (e.g. their part is not stored yet).
    """

    def store_and_apply(payloads: list[dict[str, Any]]) -> None:
        now = clock.now()
        with sessions.begin() as session:
            records = [
                InboundRecord(provider=provider, channel=channel, received_at=now, payload=p)
                for p in payloads
            ]
            session.add_all(records)
            session.flush()
            try:
                with session.begin_nested():
                    apply_records(session, records, now=now)
            except Exception:  # the raw records still commit; the tick retries them, the reader lives on
                log.exception("%d inbound records from %s could not be applied yet", len(records), provider)

    def store_and_hand_off(payloads: list[dict[str, Any]]) -> None:
        now = clock.now()
        rows = [
            {"provider": provider, "channel": channel, "received_at": now, "payload": p} for p in payloads
        ]
        with sessions.begin() as session:
            session.execute(insert(_INBOUND), rows)  # Core executemany: no ORM bookkeeping on the gateway
        assert hand_off is not None
        try:
            hand_off()
        except Exception:  # committed already: the tick applies what the hand-off could not
            log.exception("could not hand off %d inbound records from %s", len(payloads), provider)

    return store_and_apply if hand_off is None else store_and_hand_off


def apply_stored(session: Session, record_ids: Sequence[int], *, now: datetime) -> tuple[int, list[int]]:
    """Apply records handed off by a gateway (those not settled meanwhile).

    Returns how many settled, and the ids still waiting for their message part to be stored."""
    records = list(
        session.scalars(
            select(InboundRecord)
            .where(InboundRecord.id.in_(list(record_ids)), InboundRecord.processed_at.is_(None))
            .order_by(InboundRecord.id)
        )
    )
    apply_records(session, records, now=now)
    waiting = [record.id for record in records if record.processed_at is None]
    return len(records) - len(waiting), waiting


def apply_pending(
    sessions: sessionmaker[Session], *, provider: str, clock: Clock, page: int = 200
) -> tuple[int, int]:
    """Apply a provider's unprocessed records, oldest first, page by page (keyset: records that still wait
    for their part never hide newer ones). Returns (settled, still waiting).

    A page is read and its PDUs parsed outside any transaction; only matching and the updates take SQLite's
    write lock, so the gateway's claims never wait long behind an applier."""
    settled = waiting = 0
    last = 0
    columns = (
        InboundRecord.id,
        InboundRecord.provider,
        InboundRecord.channel,
        InboundRecord.received_at,
        InboundRecord.payload,
    )
    while True:
        with readers_of(sessions)() as session:
            rows = session.execute(
                select(*columns)
                .where(
                    InboundRecord.provider == provider,
                    InboundRecord.processed_at.is_(None),
                    InboundRecord.id > last,
                )
                .order_by(InboundRecord.id)
                .limit(page)
            ).all()
        if not rows:
            break
        last = rows[-1].id
        now = clock.now()
        copies = [_Copy(*row) for row in rows]
        read = _read(copies, now=now)
        with sessions.begin() as session:
            ids = [row.id for row in rows]
            still_open = set(
                session.scalars(
                    select(InboundRecord.id)
                    .where(InboundRecord.id.in_(ids), InboundRecord.processed_at.is_(None))
                    .with_for_update(skip_locked=True)  # PostgreSQL: two appliers split the work
                )
            )
            _settle(
                session, [(record, events) for record, events in read if record.id in still_open], now=now
            )
            closed = [
                {"b_id": c.id, "b_at": c.processed_at, "b_outcome": c.outcome}
                for c in copies
                if c.id in still_open and c.processed_at is not None
            ]
            if closed:
                session.connection().execute(
                    update(_INBOUND)
                    .where(_INBOUND.c.id == bindparam("b_id"))
                    .values(processed_at=bindparam("b_at"), outcome=bindparam("b_outcome")),
                    closed,
                )
        settled += len(closed)
        waiting += len(still_open) - len(closed)
        if len(rows) < page:
            break
    return settled, waiting


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
    records = list(session.scalars(query))
    apply_records(session, records, now=now)
    return sum(1 for record in records if record.processed_at is not None)


@dataclass
class _Resolved:
    record: _Stored
    event: DeliveryEvent
    message_id: int | None = None
    part: _Part | None = None
    outcome: str = "unmatched"


@dataclass(frozen=True)
class _Part:
    id: int
    message_id: int
    number: int
    provider_id: str


class _Stored(Protocol):
    """What applying needs of a stored record: an ``InboundRecord`` or a plain copy of one (``_Copy``)."""

    id: int
    provider: str
    channel: str
    received_at: datetime
    payload: dict[str, Any]
    processed_at: datetime | None
    outcome: str | None


@dataclass
class _Copy:
    """A stored record read outside the write transaction (its outcome is written back by id)."""

    id: int
    provider: str
    channel: str
    received_at: datetime
    payload: dict[str, Any]
    processed_at: datetime | None = None
    outcome: str | None = None


def apply_records(session: Session, records: Sequence[_Stored], *, now: datetime) -> None:
    """Apply many records with a handful of set-based statements (one receipt per part can come in at
    the rate of the send itself). Settled records get ``processed_at``; unmatched ones wait for a retry."""
    _settle(session, _read(records, now=now), now=now)


def _read(records: Sequence[_Stored], *, now: datetime) -> list[tuple[_Stored, list[DeliveryEvent]]]:
    """Each record with its events; an unreadable one is closed at once (kept raw for the audit, so it
    never blocks the records behind it). No database work: callers may do it outside a transaction."""
    read: list[tuple[_Stored, list[DeliveryEvent]]] = []
    for record in records:
        try:
            read.append((record, parse_record(record)))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("inbound record %s from %s is unreadable: %r", record.id, record.provider, exc)
            record.processed_at = now
            record.outcome = f"unreadable: {exc!r}"[:200]
    return read


def _settle(session: Session, read: list[tuple[_Stored, list[DeliveryEvent]]], *, now: datetime) -> None:
    resolved = [_Resolved(record, event) for record, events in read for event in events]
    _match_parts(session, resolved)
    _match_mails(session, resolved)
    fresh = _record_events(session, resolved, now=now)
    _move_parts(session, fresh, now=now)
    _settle_messages(session, fresh, now=now)
    by_record: dict[int, list[str]] = defaultdict(list)
    for item in resolved:
        by_record[id(item.record)].append(item.outcome)
    for record, _events in read:
        outcomes = by_record.get(id(record), ["empty"])
        if "unmatched" not in outcomes or now - record.received_at > UNMATCHED_AFTER:
            record.processed_at = now
            record.outcome = ",".join(outcomes)[:200]


def _match_parts(session: Session, resolved: list[_Resolved]) -> None:
    """Receipts naming a provider id → the stored part, by any form of the id; an exact match wins."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for item in resolved:
        if _names_a_part(item.event):
            wanted[item.record.provider].update(_id_forms(item.event))
    found: dict[tuple[str, str], list[_Part]] = defaultdict(list)
    for provider, variants in wanted.items():
        ids = sorted(variants)
        for start in range(0, len(ids), 500):
            rows = session.execute(
                select(
                    MessagePart.id, MessagePart.message_id, MessagePart.number, MessagePart.provider_id
                ).where(
                    MessagePart.provider == provider, MessagePart.provider_id.in_(ids[start : start + 500])
                )
            )
            for row in rows:
                found[(provider, row.provider_id)].append(
                    _Part(row.id, row.message_id, row.number, row.provider_id)
                )
    for item in resolved:
        if item.event.type == EventType.INBOUND:
            item.outcome = "inbound"
            continue
        if item.event.outbox_id is not None:
            continue
        if not item.event.provider_id:
            item.outcome = "ignored"
            continue
        exact = normalize_provider_id(item.event.provider_id)
        candidates = [p for v in _id_forms(item.event) for p in found.get((item.record.provider, v), [])]
        if candidates:
            candidates.sort(key=lambda p: (p.provider_id != exact, -p.id))
            item.part = candidates[0]
            item.message_id = item.part.message_id


def _names_a_part(event: DeliveryEvent) -> bool:
    return event.type != EventType.INBOUND and event.outbox_id is None and bool(event.provider_id)


def _id_forms(event: DeliveryEvent) -> frozenset[str]:
    exact = normalize_provider_id(event.provider_id)
    return event.provider_id_forms | ({exact} if exact else set())


def _match_mails(session: Session, resolved: list[_Resolved]) -> None:
    """Events that carry our own outbox id (a DSN's VERP address or Message-ID) → that message."""
    wanted = {item.event.outbox_id for item in resolved if item.event.outbox_id is not None}
    if not wanted:
        return
    known = set(session.scalars(select(Message.id).where(Message.id.in_(wanted))))
    for item in resolved:
        if item.event.outbox_id in known:
            item.message_id = item.event.outbox_id


def _dedupe_key(item: _Resolved) -> str:
    if item.event.type == EventType.INBOUND:
        return f"{item.record.provider}:mo:{item.record.id}"
    number = item.part.number if item.part else 0
    provider_id = normalize_provider_id(item.event.provider_id)
    return f"{item.record.provider}:{provider_id}:{number}:{item.event.type.value}"


def _record_events(session: Session, resolved: list[_Resolved], *, now: datetime) -> list[_Resolved]:
    """Store each new fact once (a repeated receipt is a no-op); returns the items seen for the first time."""
    candidates = [i for i in resolved if i.outcome == "inbound" or i.message_id is not None]
    keys = [_dedupe_key(i) for i in candidates]
    seen: set[str] = set()
    for start in range(0, len(keys), 500):
        seen.update(
            session.scalars(
                select(DeliveryEventRow.dedupe_key).where(
                    DeliveryEventRow.dedupe_key.in_(keys[start : start + 500])
                )
            )
        )
    fresh: list[_Resolved] = []
    rows: list[dict[str, Any]] = []
    for item, key in zip(candidates, keys, strict=True):
        if key in seen:
            item.outcome = "duplicate"
            continue
        seen.add(key)
        if item.outcome != "inbound":
            item.outcome = item.event.type.value
        fresh.append(item)
        rows.append(
            {
                "dedupe_key": key,
                "message_id": item.message_id,
                "inbound_id": item.record.id,
                "provider": item.record.provider,
                "provider_id": normalize_provider_id(item.event.provider_id),
                "type": item.event.type.value,
                "status_text": item.event.status_text,
                "error_code": item.event.error_code,
                "occurred_at": item.event.occurred_at,
                "recorded_at": now,
            }
        )
    insert_ignoring_conflicts(session, DeliveryEventRow.__table__, rows, conflict=["dedupe_key"])  # type: ignore[arg-type]
    return [i for i in fresh if i.event.type in PART_STATE]


def _move_parts(session: Session, fresh: list[_Resolved], *, now: datetime) -> None:
    params = [{"b_id": i.part.id, "b_state": PART_STATE[i.event.type]} for i in fresh if i.part is not None]
    if params:
        table = _PARTS
        session.connection().execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(state=bindparam("b_state"), updated_at=now),
            params,
        )


def _status_in(table: Table, statuses: Iterable[MessageStatus]) -> ColumnElement[bool]:
    # ``IN`` cannot be expanded inside an executemany; fixed-value parameters can.
    return or_(*(table.c.status == bindparam(f"src_{s.value}", s.value) for s in sorted(statuses)))


def _settle_messages(session: Session, fresh: list[_Resolved], *, now: datetime) -> None:
    """A long SMS is delivered when all its parts are; any failed part fails the message."""
    if not fresh:
        return
    sms_ids = sorted({i.message_id for i in fresh if i.part is not None and i.message_id is not None})
    delivered_parts: dict[int, tuple[int, int]] = {}  # message id → (delivered parts, known parts)
    for start in range(0, len(sms_ids), 500):
        rows = session.execute(
            select(
                MessagePart.message_id,
                func.count(),
                func.sum(case((MessagePart.state == "delivered", 1), else_=0)),
                Message.segments,
            )
            .join(Message, Message.id == MessagePart.message_id)
            .where(MessagePart.message_id.in_(sms_ids[start : start + 500]))
            .group_by(MessagePart.message_id, Message.segments)
        )
        for message_id, stored, delivered, segments in rows:
            # Parts accepted before a retry are stored while the others still wait: count every planned part.
            delivered_parts[message_id] = (int(delivered or 0), max(int(stored), segments or 0))
    if delivered_parts:
        table = _MESSAGES
        session.connection().execute(
            update(table).where(table.c.id == bindparam("b_id")).values(parts_delivered=bindparam("b_n")),
            [{"b_id": mid, "b_n": n} for mid, (n, _known) in delivered_parts.items()],
        )
    targets: dict[MessageStatus, list[dict[str, Any]]] = defaultdict(list)
    for item in fresh:
        assert item.message_id is not None
        event = item.event
        if event.type == EventType.DELIVERED:
            if item.part is not None:
                delivered, known = delivered_parts.get(item.message_id, (0, 0))
                if delivered < known:
                    continue
            targets[MessageStatus.DELIVERED].append({"b_id": item.message_id, "b_reason": None})
            continue
        reason = f"{event.status_text or event.type.value}" + (
            f" err:{event.error_code}" if event.error_code else ""
        )
        target = (
            MessageStatus.PERMANENT_FAILURE
            if event.type == EventType.FAILED
            else MessageStatus.TEMPORARY_FAILURE
        )
        targets[target].append({"b_id": item.message_id, "b_reason": reason})
    table = _MESSAGES
    for target, params in targets.items():
        # Guarded: only from the statuses this one may follow (a late DELIVRD does not undo a failure).
        session.connection().execute(
            update(table)
            .where(table.c.id == bindparam("b_id"), _status_in(table, sources_for(target)))
            .values(status=target.value, final_at=now, reason=bindparam("b_reason")),
            params,
        )
