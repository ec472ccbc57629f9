"""When a chunk and a run are done: a chunk is finished when none of its rows waits, a run is complete
when none of its messages waits to be sent, and a campaign without a schedule completes with its run."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from broadcaster import audit
from broadcaster.campaigns.store import definition_of
from broadcaster.db.models import Campaign, CampaignRun, CampaignVersion, Chunk, Message
from broadcaster.db.rows import required
from broadcaster.vocabulary import CampaignState, MessageStatus, RunStatus


def finish_chunk(sessions: sessionmaker[Session], chunk_id: int, now: datetime) -> None:
    """Mark the chunk finished if none of its rows is queued any more, and complete its run if done."""
    with sessions.begin() as session:
        chunk = session.get(Chunk, chunk_id)
        if chunk is None:
            return
        left = session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.chunk_id == chunk_id, Message.status == MessageStatus.QUEUED)
        )
        if not left:
            chunk.finished_at = now
        if chunk.run_id is not None:
            complete_run_if_done(session, chunk.run_id, now)


def complete_run_if_done(session: Session, run_id: int, now: datetime) -> bool:
    """A run is complete when none of its messages waits to be sent (receipts may still come later);
    ``completed_with_held`` while some are held as ``unknown``, until an operator settles them.

    A campaign without a schedule section is sent once: it is completed with its run."""
    pending = session.scalar(  # one row is enough: a count read millions, under the write lock
        select(Message.id)
        .where(Message.run_id == run_id, Message.status.in_([MessageStatus.QUEUED, MessageStatus.SENDING]))
        .limit(1)
    )
    if pending is not None:
        return False
    held = session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.run_id == run_id, Message.status == MessageStatus.UNKNOWN)
    )
    status = RunStatus.COMPLETED_WITH_HELD if held else RunStatus.COMPLETED
    result = session.execute(
        update(CampaignRun)
        .where(
            CampaignRun.id == run_id,
            CampaignRun.status.in_([RunStatus.SENDING, RunStatus.COMPLETED_WITH_HELD]),
            CampaignRun.status != status,
        )
        .values(status=status, finished_at=now)
    )
    if not getattr(result, "rowcount", 0):
        return False
    run = required(session, CampaignRun, run_id, referenced_by="the update just made")
    version = required(session, CampaignVersion, run.version_id, referenced_by=f"run {run_id}")
    if definition_of(version).schedule is None:
        completed = session.execute(
            update(Campaign)
            .where(
                Campaign.id == run.campaign_id,
                Campaign.state == CampaignState.APPROVED,
                Campaign.approved_version_id == run.version_id,  # an older version's run finishing late
            )
            .values(state=CampaignState.COMPLETED, updated_at=now)
        )
        if getattr(completed, "rowcount", 0):
            audit.record(
                session,
                actor="engine",
                action="campaign.completed",
                subject_type="campaign",
                subject_id=run.campaign_id,
                at=now,
                details={
                    "run_id": run_id,
                    "version": version.number,
                    "state": {"from": CampaignState.APPROVED.value, "to": CampaignState.COMPLETED.value},
                },
            )
    return True
