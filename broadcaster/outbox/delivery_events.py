"""Stored inbound records → normalised delivery events → message statuses.

Each record is read by the adapter that owns its channel's records (through ``channels.registry``); its events
are matched to a stored SMS part (by any form of the provider id) or to a message (by the outbox id the
provider echoed back), stored once each (a repeated receipt is a no-op), and move parts and messages with
guarded updates. A record whose events match nothing stays open for a retry until ``UNMATCHED_AFTER``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, case, func, select
from sqlalchemy.orm import Session

from broadcaster.audit.deliveries import deliveries_audited, record_results
from broadcaster.db.bulk import insert_ignoring_conflicts, one_of, update_by_id
from broadcaster.db.models import DeliveryEventRow, Message, MessagePart
from broadcaster.outbox.fallbacks import cancel_fallbacks_of, release_fallbacks_of
from broadcaster.outbox.handback import worker_id
from broadcaster.outbox.replies import Reply, ReplyRules, handle_replies
from broadcaster.outbox.status import sources_for
from broadcaster.suppressing import suppress_address
from broadcaster.vocabulary import MessageStatus
from channels import registry
from channels.base import DeliveryEvent, EventType, normalize_provider_id
from channels.masking import mask_text

log = logging.getLogger(__name__)

UNMATCHED_AFTER = timedelta(minutes=10)

# Core tables for executemany updates (the ORM would evaluate every object in the session).
_MESSAGES = cast(Table, Message.__table__)
_PARTS = cast(Table, MessagePart.__table__)

PART_STATE = {EventType.DELIVERED: "delivered", EventType.FAILED: "failed", EventType.EXPIRED: "expired"}


def parse_record(record: StoredRecord) -> list[DeliveryEvent]:
    """The events in a stored record, read by the adapter that owns its channel's records (the registry)."""
    return registry.parse_events(registry.inbound_type(record.channel), record.payload)


@dataclass
class _Resolved:
    record: StoredRecord
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


class StoredRecord(Protocol):
    """What applying needs of a stored record: an ``InboundRecord`` or a plain copy of one (``RecordCopy``)."""

    id: int
    provider: str
    channel: str
    received_at: datetime
    payload: dict[str, Any]
    processed_at: datetime | None
    outcome: str | None


@dataclass
class RecordCopy:
    """A stored record read outside the write transaction (its outcome is written back by id)."""

    id: int
    provider: str
    channel: str
    received_at: datetime
    payload: dict[str, Any]
    processed_at: datetime | None = None
    outcome: str | None = None


def apply_records(
    session: Session, records: Sequence[StoredRecord], *, now: datetime, replies: ReplyRules | None = None
) -> None:
    """Apply many records with a handful of set-based statements (one receipt per part can come in at
    the rate of the send itself). Settled records get ``processed_at``; unmatched ones wait for a retry.

    With ``replies``, a mobile-originated message seen for the first time is handled as a reply
    (``broadcaster.outbox.replies``); without, it is only recorded as an event."""
    settle_records(session, read_records(records, now=now), now=now, replies=replies)


def read_records(
    records: Sequence[StoredRecord], *, now: datetime
) -> list[tuple[StoredRecord, list[DeliveryEvent]]]:
    """Each record with its events; an unreadable one is closed at once (kept raw for the audit, so it
    never blocks the records behind it). No database work: callers may do it outside a transaction."""
    read: list[tuple[StoredRecord, list[DeliveryEvent]]] = []
    for record in records:
        try:
            read.append((record, parse_record(record)))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning(
                "inbound record %s from %s is unreadable: %s",
                record.id,
                record.provider,
                mask_text(repr(exc)),  # a parser's complaint may quote the record, addresses and all
                extra={"provider": record.provider},
            )
            record.processed_at = now
            record.outcome = f"unreadable: {exc!r}"[:200]
    return read


def settle_records(
    session: Session,
    read: list[tuple[StoredRecord, list[DeliveryEvent]]],
    *,
    now: datetime,
    replies: ReplyRules | None = None,
) -> None:
    resolved = [_Resolved(record, event) for record, events in read for event in events]
    _match_parts(session, resolved)
    _match_mails(session, resolved)
    recorded = _record_events(session, resolved, now=now)
    if replies is not None:
        handle_replies(session, _replies_among(recorded), rules=replies, now=now)
    fresh = [i for i in recorded if i.event.type in PART_STATE]
    _move_parts(session, fresh, now=now)
    moved = _settle_messages(session, fresh, now=now)
    _audit_moved(session, moved, now=now)
    _suppress_invalid_addresses(session, fresh, now=now)
    by_record: dict[int, list[str]] = defaultdict(list)
    for item in resolved:
        by_record[id(item.record)].append(item.outcome)
    for record, _events in read:
        outcomes = by_record.get(id(record), ["empty"])
        # A receipt may come before its part is stored: it waits. An e-mail is stored before it is sent, so
        # a bounce naming no known message never will match: it is closed (and listed) at once.
        if (
            "unmatched" not in outcomes
            or record.channel == "email"
            or now - record.received_at > UNMATCHED_AFTER
        ):
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
    if item.part is None and item.event.outbox_id is not None:
        # A DSN names its message by our own id (VERP, Message-ID); many quote no Message-ID at all, and a
        # key without the id would make the first such bounce hide every later one.
        return f"{item.record.provider}:m{item.event.outbox_id}:{item.event.type.value}"
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
    return fresh


def _replies_among(recorded: list[_Resolved]) -> list[Reply]:
    return [
        Reply(
            inbound_id=i.record.id,
            provider=i.record.provider,
            sender=i.event.sender or "",
            text=i.event.text or "",
            received_at=i.record.received_at,
        )
        for i in recorded
        if i.event.type == EventType.INBOUND and i.record.channel == "sms" and i.event.sender
    ]


def _move_parts(session: Session, fresh: list[_Resolved], *, now: datetime) -> None:
    params = [{"b_id": i.part.id, "b_state": PART_STATE[i.event.type]} for i in fresh if i.part is not None]
    update_by_id(session, _PARTS, params, from_row={"state": "b_state"}, constants={"updated_at": now})


def _lock_messages(session: Session, message_ids: list[int]) -> None:
    """PostgreSQL: lock the messages whose parts just moved before their parts are counted, in id order (two
    appliers then never deadlock on them). Two appliers that each move one part of the same long SMS would
    otherwise each count only their own part as delivered (READ COMMITTED) and neither would deliver the
    message; now the second waits for the first to commit and counts both. SQLite has one writer at a time."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for start in range(0, len(message_ids), 500):
        session.execute(
            select(Message.id)
            .where(Message.id.in_(message_ids[start : start + 500]))
            .order_by(Message.id)
            .with_for_update()
        )


def _settle_messages(session: Session, fresh: list[_Resolved], *, now: datetime) -> list[_Moved]:
    """A long SMS is delivered when all its parts are; any failed part fails the message. Returns the
    status changes that apply, when they are audited."""
    if not fresh:
        return []
    part_message_ids = sorted(
        {i.message_id for i in fresh if i.part is not None and i.message_id is not None}
    )
    _lock_messages(session, part_message_ids)
    delivered_parts: dict[int, tuple[int, int]] = {}  # message id → (delivered parts, known parts)
    for start in range(0, len(part_message_ids), 500):
        rows = session.execute(
            select(
                MessagePart.message_id,
                func.count(),
                func.sum(case((MessagePart.state == "delivered", 1), else_=0)),
                Message.segments,
            )
            .join(Message, Message.id == MessagePart.message_id)
            .where(MessagePart.message_id.in_(part_message_ids[start : start + 500]))
            .group_by(MessagePart.message_id, Message.segments)
        )
        for message_id, stored, delivered, segments in rows:
            # Parts accepted before a retry are stored while the others still wait: count every planned part.
            delivered_parts[message_id] = (int(delivered or 0), max(int(stored), segments or 0))
    targets: dict[MessageStatus, list[dict[str, Any]]] = defaultdict(list)
    causes: dict[tuple[MessageStatus, int], _Resolved] = {}
    for item in fresh:
        assert item.message_id is not None
        event = item.event
        if event.type == EventType.DELIVERED:
            if item.part is not None:
                delivered, known = delivered_parts.get(item.message_id, (0, 0))
                if delivered < known:
                    continue
            targets[MessageStatus.DELIVERED].append({"b_id": item.message_id, "b_reason": None})
            causes[(MessageStatus.DELIVERED, item.message_id)] = item
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
        causes[(target, item.message_id)] = item
    moved = _moves(session, targets, causes) if deliveries_audited(session) else []
    for target, params in targets.items():
        # A delivered message's part count goes with its status: one new version of the row, not two.
        counted = [
            p | {"b_n": delivered_parts[p["b_id"]][0]}
            for p in params
            if target == MessageStatus.DELIVERED and p["b_id"] in delivered_parts
        ]
        uncounted = [
            p for p in params if target != MessageStatus.DELIVERED or p["b_id"] not in delivered_parts
        ]
        for group, from_row in (
            (counted, {"reason": "b_reason", "parts_delivered": "b_n"}),
            (uncounted, {"reason": "b_reason"}),
        ):
            # Guarded: only from the statuses this one may follow (a late DELIVRD does not undo a failure).
            update_by_id(
                session,
                _MESSAGES,
                group,
                from_row=from_row,
                constants={"status": target.value, "final_at": now},
                where=[one_of(_MESSAGES.c.status, [s.value for s in sources_for(target)])],
            )
    # The other counts: a part of a long SMS, a message that failed, a receipt after the message was final.
    update_by_id(
        session,
        _MESSAGES,
        [{"b_id": mid, "b_n": n} for mid, (n, _known) in delivered_parts.items()],
        from_row={"parts_delivered": "b_n"},
        only_changes=True,
    )
    delivered = [p["b_id"] for p in targets.get(MessageStatus.DELIVERED, [])]
    if delivered:  # in this transaction: a delivered primary's waiting fallback never goes
        cancel_fallbacks_of(session, delivered, now=now)
    failed = [p["b_id"] for p in targets.get(MessageStatus.PERMANENT_FAILURE, [])]
    if failed:  # and one that failed for good need not make its fallback wait
        release_fallbacks_of(session, failed, now=now)
    return moved


@dataclass(frozen=True)
class _Moved:
    message_id: int
    status: MessageStatus
    event: str
    provider: str


def _moves(
    session: Session,
    targets: dict[MessageStatus, list[dict[str, Any]]],
    causes: dict[tuple[MessageStatus, int], _Resolved],
) -> list[_Moved]:
    """The changes the guarded updates below will make: one read of the messages' statuses per 500, then
    the updates played in their order (a late DELIVRD after a failure moves nothing, and is not listed)."""
    ids = sorted({p["b_id"] for params in targets.values() for p in params})
    current: dict[int, MessageStatus] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(Message.id, Message.status).where(Message.id.in_(ids[start : start + 500]))
        )
        current.update((mid, MessageStatus(status)) for mid, status in rows)
    moved: list[_Moved] = []
    for target, params in targets.items():
        allowed = sources_for(target)
        for p in params:
            mid = p["b_id"]
            if current.get(mid) in allowed:
                current[mid] = target
                item = causes[(target, mid)]
                moved.append(_Moved(mid, target, item.event.type.value, item.record.provider))
    return moved


def _audit_moved(session: Session, moved: list[_Moved], *, now: datetime) -> None:
    """One ``delivery.results`` entry per provider in the batch, in its transaction."""
    by_provider: dict[str, list[list[Any]]] = defaultdict(list)
    for m in moved:
        by_provider[m.provider].append([m.message_id, m.status.value, m.event])
    for provider, messages in sorted(by_provider.items()):
        record_results(
            session,
            actor=f"inbound@{worker_id()}",
            provider=provider,
            subject_type="provider",
            subject_id=provider,
            messages=messages,
            at=now,
        )


def _suppress_invalid_addresses(session: Session, fresh: list[_Resolved], *, now: datetime) -> None:
    """A failure the adapter's parser blamed on the address (a number that does not exist, a hard bounce)
    suppresses that address (docs/architecture.md §4, "Suppression"); a repeated receipt was never fresh."""
    blamed = [i for i in fresh if i.event.address_invalid and i.message_id is not None]
    if not blamed:
        return
    ids = sorted({i.message_id for i in blamed if i.message_id is not None})
    addresses = {
        row.id: (row.channel, row.address)
        for row in session.execute(
            select(Message.id, Message.channel, Message.address).where(Message.id.in_(ids))
        )
    }
    for item in blamed:
        assert item.message_id is not None
        channel, address = addresses[item.message_id]
        said = " ".join(
            p for p in (item.event.status_text, item.event.error_code and f"err:{item.event.error_code}") if p
        )
        suppress_address(
            session,
            channel=channel,
            address=address,
            reason=f"the provider reports the address does not exist ({said or item.event.type.value})",
            source=f"{item.record.provider}:{said or item.event.type.value}"[:100],
            now=now,
        )
