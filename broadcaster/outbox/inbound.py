"""Inbound traffic from providers: store the raw record first (committed before the provider is answered),
then have it applied (:mod:`broadcaster.outbox.delivery_events`) here, by another process, or by the tick.

A receipt can arrive before the part it refers to is stored (the SMSC answered faster than we committed the
submit_sm_resp). Such a record stays unprocessed and is retried after each window and by the tick; records
that still match nothing after ``UNMATCHED_AFTER`` are closed as unmatched.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.clock import Clock
from broadcaster.db.bulk import insert_rows, update_by_id
from broadcaster.db.conflicts import retrying_conflicts
from broadcaster.db.engine import readers_of
from broadcaster.db.models import InboundRecord
from broadcaster.lease import run_exclusively
from broadcaster.outbox.delivery_events import RecordCopy, apply_records, read_records, settle_records
from broadcaster.outbox.replies import ReplyRules

log = logging.getLogger(__name__)

# Core tables for executemany updates (the ORM would evaluate every object in the session).
_INBOUND = cast(Table, InboundRecord.__table__)


def inbound_batch_handler(
    sessions: sessionmaker[Session],
    *,
    provider: str,
    channel: str,
    clock: Clock,
    hand_off: Callable[[], None] | None = None,
    replies: ReplyRules | None = None,
) -> Callable[[list[dict[str, Any]]], None]:
    """The callback an adapter calls with what it received: store the raw records, in one commit.

    Returning means committed; the adapter answers the provider only then. Everything that queued up while
    the previous commit ran goes into the next one (a group commit). With ``hand_off`` the records are
    applied elsewhere: ``hand_off()`` asks another process to apply what is pending (so the SMPP gateway
    keeps its CPU for the wire). Without it they are applied here, in a savepoint: if that fails, the raw
    records still commit and the tick retries them (e.g. their part is not stored yet). ``replies``: see
    ``apply_records``.
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
                    apply_records(session, records, now=now, replies=replies)
            except Exception:  # the raw records still commit; the tick retries them, the reader lives on
                log.exception("%d inbound records from %s could not be applied yet", len(records), provider)

    def store_and_hand_off(payloads: list[dict[str, Any]]) -> None:
        now = clock.now()
        rows = [
            {"provider": provider, "channel": channel, "received_at": now, "payload": p} for p in payloads
        ]
        with sessions.begin() as session:
            insert_rows(session, _INBOUND, rows)  # Core, no ORM bookkeeping on the gateway
        assert hand_off is not None
        try:
            hand_off()
        except Exception:  # committed already: the tick applies what the hand-off could not
            log.exception("could not hand off %d inbound records from %s", len(payloads), provider)

    return store_and_apply if hand_off is None else store_and_hand_off


def apply_stored(
    session: Session, record_ids: Sequence[int], *, now: datetime, replies: ReplyRules | None = None
) -> tuple[int, list[int]]:
    """Apply records handed off by a gateway (those not settled meanwhile).

    Returns how many settled, and the ids still waiting for their message part to be stored."""
    records = list(
        session.scalars(
            select(InboundRecord)
            .where(InboundRecord.id.in_(list(record_ids)), InboundRecord.processed_at.is_(None))
            .order_by(InboundRecord.id)
        )
    )
    apply_records(session, records, now=now, replies=replies)
    waiting = [record.id for record in records if record.processed_at is None]
    return len(records) - len(waiting), waiting


def apply_pending(
    sessions: sessionmaker[Session],
    *,
    provider: str,
    clock: Clock,
    page: int = 200,
    replies: ReplyRules | None = None,
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
        done, left = retrying_conflicts(
            functools.partial(_settle_page, sessions, rows, clock=clock, replies=replies),
            what=f"applying inbound records of {provider}",
        )
        settled += done
        waiting += left
        if len(rows) < page:
            break
    return settled, waiting


def _settle_page(
    sessions: sessionmaker[Session],
    rows: Sequence[Sequence[Any]],
    *,
    clock: Clock,
    replies: ReplyRules | None,
) -> tuple[int, int]:
    """One page in one write transaction (run again whole if PostgreSQL cancels it for a deadlock): the
    records still open are locked, matched and closed. Returns (settled, still waiting)."""
    now = clock.now()
    copies = [RecordCopy(*row) for row in rows]
    read = read_records(copies, now=now)
    with sessions.begin() as session:
        ids = [copy.id for copy in copies]
        still_open = set(
            session.scalars(
                select(InboundRecord.id)
                .where(InboundRecord.id.in_(ids), InboundRecord.processed_at.is_(None))
                .with_for_update(skip_locked=True)  # PostgreSQL: two appliers split the work
            )
        )
        # SQLite holds the write lock from that first statement (BEGIN IMMEDIATE): what this records (a
        # withdrawal's recorded_at) is stamped in commit order with the hand-over marks (claims.mark_handed).
        now = clock.now()
        settle_records(
            session,
            [(record, events) for record, events in read if record.id in still_open],
            now=now,
            replies=replies,
        )
        closed = [
            {"b_id": c.id, "b_at": c.processed_at, "b_outcome": c.outcome}
            for c in copies
            if c.id in still_open and c.processed_at is not None
        ]
        update_by_id(session, _INBOUND, closed, from_row={"processed_at": "b_at", "outcome": "b_outcome"})
    return len(closed), len(still_open) - len(closed)


def applier_lease(provider: str) -> str:
    """The lease of a provider's applier: one pass at a time, a worker's or the tick's (broadcaster/lease.py)."""
    return f"apply-inbound:{provider}"


def apply_pending_exclusively(
    sessions: sessionmaker[Session], *, provider: str, clock: Clock, replies: ReplyRules | None = None
) -> list[tuple[int, int]] | None:
    """``apply_pending`` under the provider's applier lease: the result of each pass, or None when another
    applier holds the lease (it was asked for one more pass, which covers what this one would have done)."""
    return run_exclusively(
        sessions,
        applier_lease(provider),
        lambda: apply_pending(sessions, provider=provider, clock=clock, replies=replies),
        clock=clock,
    )


def process_pending(
    session: Session,
    *,
    now: datetime,
    provider: str | None = None,
    limit: int = 1000,
    received_after: datetime | None = None,
    received_before: datetime | None = None,
    replies: ReplyRules | None = None,
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
    apply_records(session, records, now=now, replies=replies)
    return sum(1 for record in records if record.processed_at is not None)
