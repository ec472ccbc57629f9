"""The tick: one call a minute (beat or the embedded runner) that keeps the outbox moving.

1. creates exactly one run per due occurrence of a scheduled campaign (guarded advance of
   ``next_occurrence_at`` plus a unique (campaign, occurrence) key, so racing ticks fire it once);
2. hands back messages stuck in ``sending`` (a worker died mid-window) and chunks whose task was lost;
3. cuts chunks for rows that became due (back-offs, deferrals, resumed campaigns) and enqueues them;
4. retries inbound records that could not be matched yet, and closes runs that have nothing left to send.

Long waits are ``not_before`` on rows, never Celery eta/countdown (ARCHITECTURE §3).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from broadcaster import audit
from broadcaster.campaigns.schema import OnUncertain
from broadcaster.campaigns.store import definition_of
from broadcaster.clock import Clock
from broadcaster.db.bulk import insert_ignoring_conflicts
from broadcaster.db.models import (
    Campaign,
    CampaignRun,
    CampaignState,
    CampaignVersion,
    Chunk,
    Message,
    RunStatus,
)
from broadcaster.outbox.chunks import cut_chunks
from broadcaster.outbox.dispatch import complete_run_if_done
from broadcaster.outbox.inbound import process_pending
from broadcaster.outbox.queues import Enqueuer
from broadcaster.outbox.status import MessageStatus
from broadcaster.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class TickReport:
    runs_created: list[int] = field(default_factory=list)
    missed: list[tuple[str, datetime]] = field(default_factory=list)
    chunks: int = 0
    swept_sending: int = 0
    swept_chunks: int = 0
    inbound_processed: int = 0
    runs_completed: int = 0


def tick(
    sessions: sessionmaker[Session], *, settings: Settings, clock: Clock, enqueuer: Enqueuer
) -> TickReport:
    report = TickReport()
    now = clock.now()
    _fire_due_occurrences(sessions, settings=settings, now=now, report=report)
    _sweep(sessions, settings=settings, now=now, report=report)
    with sessions.begin() as session:
        chunks = cut_chunks(session, settings=settings, clock=clock)
        report.inbound_processed = process_pending(session, now=now)
        for run_id in session.scalars(select(CampaignRun.id).where(CampaignRun.status == RunStatus.SENDING)):
            report.runs_completed += complete_run_if_done(session, run_id, now)
    for run_id in report.runs_created:
        enqueuer.plan_run(run_id)
    for chunk_id, queue in chunks:
        enqueuer.dispatch_chunk(chunk_id, queue=queue)
    report.chunks = len(chunks)
    return report


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
    version = session.get(CampaignVersion, campaign.approved_version_id)
    assert version is not None
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
    assert run_id is not None
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
    with sessions.begin() as session:
        stuck = session.execute(
            select(Message.id, Message.version_id).where(
                Message.status == MessageStatus.SENDING, Message.claimed_at < cutoff
            )
        ).all()
        resend_versions = {
            v.id
            for v in session.scalars(
                select(CampaignVersion).where(CampaignVersion.id.in_({vid for _id, vid in stuck if vid}))
            )
            if definition_of(v).on_uncertain == OnUncertain.RESEND
        }
        for message_id, version_id in stuck:
            # The worker died after claiming: the provider may or may not have the message.
            values: dict[str, object]
            if version_id in resend_versions:
                values = {
                    "status": MessageStatus.QUEUED,
                    "chunk_id": None,
                    "reason": "worker lost while sending; resent",
                }
            else:
                values = {
                    "status": MessageStatus.UNKNOWN,
                    "hold": True,
                    "reason": "worker lost while sending; held for an operator",
                }
            session.execute(
                update(Message)
                .where(Message.id == message_id, Message.status == MessageStatus.SENDING)
                .values(**values)
            )
        report.swept_sending = len(stuck)
        lost = list(
            session.scalars(select(Chunk.id).where(Chunk.finished_at.is_(None), Chunk.created_at < cutoff))
        )
        if lost:
            session.execute(
                update(Message)
                .where(Message.chunk_id.in_(lost), Message.status == MessageStatus.QUEUED)
                .values(chunk_id=None)
            )
            session.execute(update(Chunk).where(Chunk.id.in_(lost)).values(finished_at=now))
        report.swept_chunks = len(lost)
