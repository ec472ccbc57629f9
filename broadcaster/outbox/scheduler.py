"""The tick: one call a minute (beat or the embedded runner) that keeps the outbox moving.

1. creates exactly one run per due occurrence of a scheduled campaign (guarded advance of
   ``next_occurrence_at`` plus a unique (campaign, occurrence) key, so racing ticks fire it once);
2. hands back messages stuck in ``sending`` (a worker died mid-window) and chunks whose task was lost;
3. cuts chunks for rows that became due (back-offs, deferrals, resumed campaigns) and enqueues them;
4. retries inbound records that could not be matched yet, and closes runs that have nothing left to send.

Long waits are ``not_before`` on rows, never Celery eta/countdown (docs/architecture.md §3).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from broadcaster import audit
from broadcaster.campaigns.store import definition_of
from broadcaster.clock import Clock
from broadcaster.db.bulk import insert_ignoring_conflicts
from broadcaster.db.engine import readers_of
from broadcaster.db.models import Campaign, CampaignRun, CampaignVersion, Chunk, InboundRecord, Message
from broadcaster.db.rows import required
from broadcaster.errors import MissingRow
from broadcaster.outbox.chunks import cut_chunks, enqueue_chunks
from broadcaster.outbox.completion import complete_run_if_done
from broadcaster.outbox.handback import hand_back
from broadcaster.outbox.inbound import apply_pending_exclusively
from broadcaster.outbox.lost_chunks import lost_chunks
from broadcaster.outbox.queues import Enqueuer
from broadcaster.outbox.replies import ReplyRules
from broadcaster.settings import Settings
from broadcaster.vocabulary import CampaignState, MessageStatus, RunStatus

log = logging.getLogger(__name__)

# Inbound records younger than this are left to the sender that is matching them right after its window.
INBOUND_RETRY_AFTER = timedelta(seconds=5)


@dataclass
class TickReport:
    runs_created: list[int] = field(default_factory=list)
    runs_replanned: list[int] = field(default_factory=list)  # being planned, no page for plan_stalled_seconds
    missed: list[tuple[str, datetime]] = field(default_factory=list)
    chunks: int = 0
    swept_sending: int = 0
    swept_chunks: int = 0
    inbound_processed: int = 0
    runs_completed: int = 0
    retained: int = 0  # rows whose personal data the daily retention blanked (broadcaster.tasks.engine_tick)
    inbound_deleted: int = 0  # applied raw inbound records past [retention] inbound_days deleted (same run)


def tick(
    sessions: sessionmaker[Session], *, settings: Settings, clock: Clock, enqueuer: Enqueuer
) -> TickReport:
    """One pass; each step looks first with a reader and takes the write lock only when it has work."""
    report = TickReport()
    now = clock.now()
    readers = readers_of(sessions)
    _fire_due_occurrences(sessions, settings=settings, now=now, report=report)
    _sweep(sessions, settings=settings, now=now, report=report)
    _stalled_plans(sessions, settings=settings, now=now, report=report)
    chunks: list[tuple[int, str]] = []
    if _has_rows_to_chunk(readers, now):
        with sessions.begin() as session:
            chunks = cut_chunks(session, settings=settings, clock=clock)
    report.inbound_processed = _retry_inbound(
        readers, sessions, now=now, clock=clock, replies=ReplyRules.from_settings(settings)
    )
    with readers() as session:
        sending = list(session.scalars(select(CampaignRun.id).where(CampaignRun.status == RunStatus.SENDING)))
        # Runs whose held messages an operator has settled (dropped) since: completed now.
        settled = list(
            session.scalars(
                select(CampaignRun.id).where(
                    CampaignRun.status == RunStatus.COMPLETED_WITH_HELD,
                    ~CampaignRun.id.in_(
                        select(Message.run_id).where(
                            Message.status.in_(
                                [MessageStatus.UNKNOWN, MessageStatus.QUEUED, MessageStatus.SENDING]
                            ),
                            Message.run_id.is_not(None),
                        )
                    ),
                )
            )
        )
    for run_id in sending:
        if not _run_busy(readers, run_id):
            with sessions.begin() as session:
                report.runs_completed += complete_run_if_done(session, run_id, now)
    for run_id in settled:
        with sessions.begin() as session:
            report.runs_completed += complete_run_if_done(session, run_id, now)
    enqueue_chunks(sessions, enqueuer, chunks, clock=clock)  # first: a refused one is handed back
    for run_id in [*report.runs_created, *report.runs_replanned]:
        enqueuer.plan_run(run_id)
    report.chunks = len(chunks)
    return report


def _has_rows_to_chunk(readers: sessionmaker[Session], now: datetime) -> bool:
    with readers() as session:
        found = session.scalar(
            select(Message.id)
            .where(
                Message.status == MessageStatus.QUEUED,
                Message.chunk_id.is_(None),
                Message.hold.is_(False),
                or_(Message.not_before.is_(None), Message.not_before <= now),
            )
            .limit(1)
        )
    return found is not None


def _retry_inbound(
    readers: sessionmaker[Session],
    sessions: sessionmaker[Session],
    *,
    now: datetime,
    clock: Clock,
    replies: ReplyRules,
) -> int:
    """Inbound records that could not be applied when they came (fresh ones are the senders' business).

    Applied under the provider's applier lease, like a worker's ``apply_inbound``: the two must never work the
    same rows at once, because each locks records and messages in its own order and PostgreSQL then cancels one
    of them for a deadlock (issue 16). When an applier holds the lease, the tick's request becomes one more pass
    of that applier."""
    with readers() as session:
        providers = list(
            session.scalars(
                select(InboundRecord.provider)
                .where(
                    InboundRecord.processed_at.is_(None),
                    InboundRecord.received_at <= now - INBOUND_RETRY_AFTER,
                )
                .distinct()
            )
        )
    settled = 0
    for provider in sorted(providers):
        passes = apply_pending_exclusively(sessions, provider=provider, clock=clock, replies=replies)
        settled += sum(done for done, _waiting in passes or [])
    return settled


def _run_busy(readers: sessionmaker[Session], run_id: int) -> bool:
    with readers() as session:
        busy = session.scalar(
            select(Message.id)
            .where(
                Message.run_id == run_id, Message.status.in_([MessageStatus.QUEUED, MessageStatus.SENDING])
            )
            .limit(1)
        )
    return busy is not None


def _fire_due_occurrences(
    sessions: sessionmaker[Session], *, settings: Settings, now: datetime, report: TickReport
) -> None:
    grace = timedelta(seconds=settings.delivery.missed_occurrence_grace_seconds)
    with sessions() as session:
        due = list(
            session.scalars(
                select(Campaign.id).where(
                    Campaign.state == CampaignState.SCHEDULED, Campaign.next_occurrence_at <= now
                )
            )
        )
    for campaign_id in due:
        while True:  # catch up, one occurrence per transaction
            with sessions.begin() as session:
                fired = _advance_one(session, campaign_id=campaign_id, now=now, grace=grace, report=report)
            if not fired:
                break


def _advance_one(
    session: Session, *, campaign_id: str, now: datetime, grace: timedelta, report: TickReport
) -> bool:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.state != CampaignState.SCHEDULED or campaign.approved_version_id is None:
        return False
    occurrence = campaign.next_occurrence_at
    if occurrence is None or occurrence > now:
        return False
    version = required(
        session, CampaignVersion, campaign.approved_version_id, referenced_by=f"campaign {campaign_id!r}"
    )
    schedule = definition_of(version).schedule
    following = schedule.next_occurrence(occurrence + timedelta(seconds=1)) if schedule else None
    # Only the tick that moves next_occurrence_at from this exact value may fire it.
    advanced = session.execute(
        update(Campaign)
        .where(
            Campaign.id == campaign_id,
            Campaign.next_occurrence_at == occurrence,
            Campaign.state == CampaignState.SCHEDULED,
        )
        .values(
            next_occurrence_at=following,
            state=CampaignState.SCHEDULED if following else CampaignState.COMPLETED,
            updated_at=now,
        )
    )
    if not getattr(advanced, "rowcount", 0):
        return False
    if now - occurrence > grace:
        # Sending a stale bulletin late (after the engine was stopped) does more harm than good.
        audit.record(
            session,
            actor="engine",
            action="campaign.occurrence_missed",
            subject_type="campaign",
            subject_id=campaign_id,
            at=now,
            details={"occurrence_at": occurrence.isoformat()},
        )
        report.missed.append((campaign_id, occurrence))
        return True
    insert_ignoring_conflicts(
        session,
        CampaignRun.__table__,  # type: ignore[arg-type]
        [
            {
                "campaign_id": campaign_id,
                "version_id": version.id,
                "occurrence_at": occurrence,
                "trigger": "schedule",
                "status": RunStatus.PLANNING,
                "planned_messages": 0,
                "plan_checkpoint": 0,
                "created_at": now,
            }
        ],
        conflict=["campaign_id", "occurrence_at"],
    )
    run_id = session.scalar(
        select(CampaignRun.id).where(
            CampaignRun.campaign_id == campaign_id, CampaignRun.occurrence_at == occurrence
        )
    )
    if run_id is None:  # inserted just above, or already there: only a damaged database lacks it
        raise MissingRow(f"campaign_runs row of {campaign_id!r} at {occurrence.isoformat()} is missing")
    audit.record(
        session,
        actor="engine",
        action="campaign.run_created",
        subject_type="campaign",
        subject_id=campaign_id,
        at=now,
        details={"run_id": run_id, "occurrence_at": occurrence.isoformat(), "version": version.number},
    )
    report.runs_created.append(run_id)
    return True


def _sweep(sessions: sessionmaker[Session], *, settings: Settings, now: datetime, report: TickReport) -> None:
    cutoff = now - timedelta(seconds=settings.delivery.stuck_after_seconds)
    with readers_of(sessions)() as session:
        stuck_any = session.scalar(
            select(Message.id)
            .where(Message.status == MessageStatus.SENDING, Message.claimed_at < cutoff)
            .limit(1)
        )
        lost_any = bool(lost_chunks(session, cutoff))
    if stuck_any is None and not lost_any:
        return
    with sessions.begin() as session:
        # A worker died after claiming: what it never handed over goes back to the queue; what it did
        # may be at the provider (held, or resent when its campaign says so).
        swept = hand_back(session, Message.claimed_at < cutoff, now=now)
        report.swept_sending = swept.queued + swept.held + swept.resent
        lost = lost_chunks(session, cutoff)
        if lost:
            session.execute(
                update(Message)
                .where(Message.chunk_id.in_(lost), Message.status == MessageStatus.QUEUED)
                .values(chunk_id=None)
            )
            session.execute(update(Chunk).where(Chunk.id.in_(lost)).values(finished_at=now))
        report.swept_chunks = len(lost)


def _stalled_plans(
    sessions: sessionmaker[Session], *, settings: Settings, now: datetime, report: TickReport
) -> None:
    """Runs still being planned whose planner stored no page for ``plan_stalled_seconds``: their plan task
    was refused by a broker that was down (``send`` told the officer so), or lost with its worker. The tick
    asks for them again; planning resumes at the run's checkpoint, and a second planner of the same run only
    finds its rows already there (idempotency keys) or the run already planned."""
    cutoff = now - timedelta(seconds=settings.delivery.plan_stalled_seconds)
    stalled = (
        CampaignRun.status == RunStatus.PLANNING,
        or_(
            CampaignRun.plan_touched_at < cutoff,
            CampaignRun.plan_touched_at.is_(None) & (CampaignRun.created_at < cutoff),
        ),
    )
    with readers_of(sessions)() as session:
        if session.scalar(select(CampaignRun.id).where(*stalled).limit(1)) is None:
            return
    with sessions.begin() as session:
        report.runs_replanned = list(
            session.scalars(
                update(CampaignRun).where(*stalled).values(plan_touched_at=now).returning(CampaignRun.id)
            )
        )
