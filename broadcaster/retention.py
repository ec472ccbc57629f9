"""Retention: after ``[retention] personal_data_days`` a settled message's address and content go, its proof stays.

A message is settled when nothing more will happen to it: a final status, or ``sent`` (an e-mail is relayed, an
SMS whose receipt never came in two years gets none). Its address and content are replaced by their hashes
(``audit.hashes``: the keyed hash of the address key, so the auditor's search still finds the person's
messages; the SHA-256 of subject and body, which proves what was sent); id, status, times, events and the
frozen rollups stay. Inbound records (SMS MO and receipts, bounce mails), inbox replies and the problem rows of
contact imports older than the period lose what names a person and keep their ids, times and outcomes.

Not touched: the audit log (append-only, names people by hash only), consent events (the proof of consent is
kept while it is relied upon), suppressions and the do-not-call register (they must keep working), delivery
events, and frozen rollups. Before anything goes, the days up to the cutoff not frozen yet are rolled up and
frozen, so a report of those days is the same whenever it is written (docs/audit.md, "Retention").

One run is one transaction with one audit entry (``retention.run``); a second run finds nothing. Messages go
in windows of ``BATCH`` ids, so a million old ones never sit in memory together; the tick's runs stop at
``TICK_LIMIT`` messages and the next tick goes on.

Raw inbound records are also deleted once applied and ``[retention] inbound_days`` old (``purge_inbound``):
what they said lives on in the delivery events, statuses and inbox replies made of them; on a busy SMS
installation they are the largest table. Their delivery events keep everything but the link to the raw record.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Text, and_, cast, delete, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from broadcaster import audit
from broadcaster.audit.hashes import address_hash, content_hash
from broadcaster.clock import Clock
from broadcaster.db.engine import readers_of
from broadcaster.db.models import ContactImport, DeliveryEventRow, InboundRecord, InboxReply, Lease, Message
from broadcaster.lease import acquire, holder_name
from broadcaster.reporting.rollups import rebuild
from broadcaster.settings import Settings
from broadcaster.vocabulary import MessageStatus
from channels.masking import mask_text

log = logging.getLogger(__name__)

BATCH = 5_000  # message ids per round (one range of the primary key, one bulk UPDATE)
ACTOR = "retention"
DAILY_LEASE = "retention.daily"  # held (never released) for a day: the tick runs retention once a day
# Messages per tick's run (a few seconds of SQLite's write lock); a backlog goes on at the next ticks.
TICK_LIMIT = 50_000
TABLES = ("messages", "inbound_records", "inbox_replies", "contact_import_problems")
PURGE_BATCH = 5_000  # raw inbound records deleted per statement

# Statuses after which nothing needs the address any more: all but these (queued, sending, unknown/held).
# Written as NOT IN so that no database picks the status index over the id range of a batch (docs/audit.md).
UNSETTLED = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.UNKNOWN)
# What a blanked inbound record's payload becomes (JSON text compared in SQL, so a second run skips it).
REDACTED_PAYLOAD: dict[str, Any] = {"redacted": "retention"}
# An erased message's address is its tombstone marker (broadcaster.subjects.erase): nothing left to hash.
_ERASED_PREFIX = "erased:"


@dataclass(frozen=True)
class RetentionReport:
    cutoff: datetime  # data settled or received before this moment is (or would be) blanked
    counts: dict[str, int]  # rows blanked (or that would be) per table
    frozen_days: int = 0  # rollup days frozen before the messages went
    dry_run: bool = False
    complete: bool = True  # False: ``limit`` stopped the messages part; another run goes on from there
    inbound_deleted: int = 0  # raw inbound records past ``inbound_days`` deleted (not in ``total``)
    total: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", sum(self.counts.values()))


def cutoff_of(settings: Settings, now: datetime) -> datetime:
    return now - timedelta(days=settings.retention.personal_data_days)


def apply_retention(
    session: Session,
    *,
    settings: Settings,
    clock: Clock,
    dry_run: bool = False,
    actor: str = ACTOR,
    limit: int | None = None,
) -> RetentionReport:
    """Blank the personal data older than the period, in the caller's transaction (a dry run only counts).

    ``limit`` stops the messages after the window that reaches it (the tick's runs stay short); None: all."""
    now = clock.now()
    cutoff = cutoff_of(settings, now)
    frozen = 0
    if not dry_run:
        zone = ZoneInfo(settings.timezone)
        last_day = cutoff.astimezone(zone).date()
        frozen = len(
            rebuild(
                session, settings, start=date(1970, 1, 1), end=last_day, clock=clock, actor=actor
            ).newly_frozen
        )
    messages, complete = _messages(session, settings, cutoff, now=now, dry_run=dry_run, limit=limit)
    counts = {
        "messages": messages,
        "inbound_records": _inbound_records(session, cutoff, dry_run=dry_run),
        "inbox_replies": _inbox_replies(session, cutoff, dry_run=dry_run),
        "contact_import_problems": _import_problems(session, cutoff, dry_run=dry_run),
    }
    report = RetentionReport(
        cutoff=cutoff, counts=counts, frozen_days=frozen, dry_run=dry_run, complete=complete
    )
    if report.total and not dry_run:
        audit.record(
            session,
            actor=actor,
            action="retention.run",
            subject_type="retention",
            subject_id=cutoff.date().isoformat(),
            at=now,
            details={
                "cutoff": cutoff.isoformat(),
                "counts": counts,
                "frozen_days": frozen,
                "complete": complete,
            },
        )
    return report


def run_daily(sessions: sessionmaker[Session], *, settings: Settings, clock: Clock) -> RetentionReport | None:
    """The tick's call: retention at most once a day per installation (None: already done today, or failed)."""
    now = clock.now()
    with readers_of(sessions)() as session:  # the usual answer, without the write lock
        lease = session.get(Lease, DAILY_LEASE)
        if lease is not None and lease.expires_at is not None and lease.expires_at > now:
            return None
    if not acquire(sessions, DAILY_LEASE, holder_name(), clock=clock, ttl=timedelta(days=1)):
        return None
    try:
        with sessions.begin() as session:
            report = apply_retention(session, settings=settings, clock=clock, limit=TICK_LIMIT)
            cutoff = inbound_cutoff(settings, now)
            deleted, purged = purge_inbound(session, cutoff=cutoff, now=now, limit=TICK_LIMIT)
            report = replace(report, inbound_deleted=deleted, complete=report.complete and purged)
            if not report.complete:  # more is due: the lease lapses now, so the next tick goes on
                lease = session.get(Lease, DAILY_LEASE)
                if lease is not None:
                    lease.holder, lease.expires_at = None, None
            return report
    except SQLAlchemyError:
        # The lease stays taken: the next try is tomorrow's, not every tick's. Nothing was committed.
        log.exception("retention: the daily run failed; it runs again tomorrow")
        return None


def inbound_cutoff(settings: Settings, now: datetime) -> datetime:
    return now - timedelta(days=settings.retention.inbound_days)


def purge_inbound(
    session: Session,
    *,
    cutoff: datetime,
    now: datetime,
    dry_run: bool = False,
    limit: int | None = None,
    actor: str = ACTOR,
) -> tuple[int, bool]:
    """Delete the raw inbound records applied (``processed_at`` set) and received before ``cutoff``
    (``inbound_cutoff``), in the caller's transaction, with one audit entry; an unapplied one is still work and
    stays. ``dry_run`` only counts; ``limit`` stops after the batch that reaches it. Returns (records deleted
    or, in a dry run, due; whether every due one was)."""
    due = and_(InboundRecord.received_at < cutoff, InboundRecord.processed_at.is_not(None))
    if dry_run:
        return session.scalar(select(func.count()).select_from(InboundRecord).where(due)) or 0, True
    deleted, complete = 0, True
    while True:
        if limit is not None and deleted >= limit:
            complete = session.scalar(select(InboundRecord.id).where(due).limit(1)) is None
            break
        ids = list(
            session.scalars(select(InboundRecord.id).where(due).order_by(InboundRecord.id).limit(PURGE_BATCH))
        )
        if not ids:
            break
        session.execute(
            update(DeliveryEventRow)
            .where(DeliveryEventRow.inbound_id.in_(ids))
            .values(inbound_id=None)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            delete(InboundRecord)
            .where(InboundRecord.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
        deleted += len(ids)
    if deleted:
        audit.record(
            session,
            actor=actor,
            action="retention.inbound_purge",
            subject_type="retention",
            subject_id=cutoff.date().isoformat(),
            at=now,
            details={"cutoff": cutoff.isoformat(), "deleted": deleted, "complete": complete},
        )
    return deleted, complete


def _settled_before(cutoff: datetime) -> ColumnElement[bool]:
    settled_at = func.coalesce(Message.final_at, Message.sent_at, Message.created_at)
    return and_(
        Message.status.not_in(UNSETTLED),
        Message.hold.is_(False),
        Message.redacted_at.is_(None),
        ~Message.address.startswith(_ERASED_PREFIX, autoescape=True),
        settled_at < cutoff,
    )


def _messages(
    session: Session, settings: Settings, cutoff: datetime, *, now: datetime, dry_run: bool, limit: int | None
) -> tuple[int, bool]:
    """(messages blanked, whether every due one was)."""
    due = _settled_before(cutoff)
    if dry_run:
        return session.scalar(select(func.count()).select_from(Message).where(due)) or 0, True
    key = settings.security.erasure_key()
    columns = (
        Message.id,
        Message.channel,
        Message.address,
        Message.address_key,
        Message.subject,
        Message.body,
        Message.idempotency_key,
        Message.reason,
    )
    # Keyset over id windows: each round reads one range of the primary key, whatever share of it is due, so
    # the run is one pass over the old part of the table (the rows created before the cutoff).
    lowest = session.scalar(select(func.min(Message.id)).where(Message.redacted_at.is_(None)))
    highest = session.scalar(select(func.max(Message.id)).where(Message.created_at < cutoff))
    if lowest is None or highest is None:
        return 0, True
    done, start = 0, lowest - 1
    while start < highest:
        end = min(start + BATCH, highest)
        rows = session.execute(select(*columns).where(due, Message.id > start, Message.id <= end)).all()
        if rows:
            session.execute(update(Message), [_blanked(row, key=key, now=now) for row in rows])
        done, start = done + len(rows), end
        if limit is not None and done >= limit and start < highest:
            return done, False
    return done, True


def _blanked(row: Any, *, key: str, now: datetime) -> dict[str, Any]:
    """One message's new values (an ORM bulk UPDATE by primary key)."""
    idempotency = row.idempotency_key
    # The planner's key embeds the address key (run:N:channel:address): the id keeps it unique instead.
    if any(part and part.lower() in idempotency.lower() for part in (row.address_key, row.address)):
        idempotency = f"redacted:{row.id}"
    return {
        "id": row.id,
        "address_hash": address_hash(key, row.channel, row.address_key or row.address),
        "content_hash": content_hash(row.subject, row.body),
        "address": "",
        "address_key": None,
        "subject": None,
        "body": "",
        "context": {},
        "idempotency_key": idempotency,
        "reason": mask_text(row.reason),
        "redacted_at": now,
    }


def _inbound_records(session: Session, cutoff: datetime, *, dry_run: bool) -> int:
    """Processed records only: an open one is still work (the tick retries it); its outcome stays."""
    text = cast(InboundRecord.payload, Text)
    due = and_(
        InboundRecord.received_at < cutoff,
        InboundRecord.processed_at.is_not(None),
        text != json.dumps(REDACTED_PAYLOAD),
        ~text.startswith('{"erased"'),  # blanked by an erasure already
    )
    return _blank(session, InboundRecord, due, {"payload": REDACTED_PAYLOAD}, dry_run=dry_run)


def _inbox_replies(session: Session, cutoff: datetime, *, dry_run: bool) -> int:
    due = and_(InboxReply.received_at < cutoff, or_(InboxReply.from_number != "", InboxReply.text != ""))
    return _blank(session, InboxReply, due, {"from_number": "", "text": ""}, dry_run=dry_run)


def _blank(
    session: Session,
    model: type[InboundRecord | InboxReply],
    due: ColumnElement[bool],
    values: dict[str, Any],
    *,
    dry_run: bool,
) -> int:
    count = session.scalar(select(func.count()).select_from(model).where(due)) or 0
    if count and not dry_run:
        session.execute(
            update(model).where(due).values(**values).execution_options(synchronize_session=False)
        )
    return count


def _import_problems(session: Session, cutoff: datetime, *, dry_run: bool) -> int:
    """An import's report keeps its counts and problem rows; the value quoting a cell (a phone, an e-mail, a
    name) goes and the reason is masked. One row per imported file: read in Python."""
    blanked = 0
    for batch in session.scalars(select(ContactImport).where(ContactImport.imported_at < cutoff)):
        problems = [dict(p) if isinstance(p, dict) else p for p in batch.report.get("problems") or []]
        due = [p for p in problems if isinstance(p, dict) and p.get("value")]
        if not due:
            continue
        blanked += len(due)
        if dry_run:
            continue
        for problem in due:
            problem["value"], problem["reason"] = "", mask_text(problem.get("reason"))
        batch.report = {**batch.report, "problems": problems}  # a new object: the JSON column sees it
    return blanked
