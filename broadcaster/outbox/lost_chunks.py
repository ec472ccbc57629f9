"""Which chunks the tick's sweeper takes for lost: their task will not come (a broker that lost it, a worker
on another host that died with it), so their queued rows go back to be cut again.

A chunk is lost when it was created more than ``stuck_after_seconds`` ago, is not finished, and its queue
either stopped moving (no chunk of it finished since then) or moved past it (a chunk of it created later
finished before then). Age alone is not enough: a city-wide run's 1,500 chunks on one gateway take over an
hour, and a chunk merely waiting its turn that the sweeper released had its rows cut again into a new chunk
at the back of the queue, again and again, each pass a write transaction that held the SQLite lock
(docs/architecture.md, "A chunk waiting its turn is not lost"). The chunks of a run still being planned are
its planner's (it enqueues them once the run is planned; one that resumes finishes a dead one's).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from broadcaster.db.models import CampaignRun, Chunk
from broadcaster.vocabulary import RunStatus

__all__ = ["lost_chunks"]


def lost_chunks(session: Session, cutoff: datetime) -> list[int]:
    """The ids of the chunks lost as of ``cutoff`` (now less ``stuck_after_seconds``)."""
    being_planned = select(CampaignRun.id).where(CampaignRun.status == RunStatus.PLANNING)
    waiting = session.execute(
        select(Chunk.id, Chunk.queue).where(
            Chunk.finished_at.is_(None),
            Chunk.created_at < cutoff,
            or_(Chunk.run_id.is_(None), Chunk.run_id.not_in(being_planned)),
        )
    ).all()
    if not waiting:
        return []
    queues = sorted({queue for _id, queue in waiting})
    last_finished: dict[str, datetime | None] = {
        queue: at
        for queue, at in session.execute(
            select(Chunk.queue, func.max(Chunk.finished_at))
            .where(Chunk.queue.in_(queues))
            .group_by(Chunk.queue)
        )
    }
    passed_by: dict[str, int] = {
        queue: last_id
        for queue, last_id in session.execute(
            select(Chunk.queue, func.max(Chunk.id))
            # Only chunks cut after the oldest waiting one can have passed it: a range of the primary key.
            .where(Chunk.id > min(chunk_id for chunk_id, _queue in waiting))
            .where(Chunk.queue.in_(queues), Chunk.finished_at < cutoff)
            .group_by(Chunk.queue)
        )
    }
    return [
        chunk_id
        for chunk_id, queue in waiting
        if _stopped(last_finished.get(queue), cutoff) or chunk_id < passed_by.get(queue, 0)
    ]


def _stopped(last_finished: datetime | None, cutoff: datetime) -> bool:
    return last_finished is None or last_finished < cutoff
