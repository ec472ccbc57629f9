"""Taking a chunk's rows for one window and giving back what never went: the claim is one guarded
``UPDATE … RETURNING`` (queued → sending, committed before anything is written to a provider); unclaim,
release and the cancel of a cancelled run's rows are guarded updates too."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.clock import Clock
from broadcaster.db.engine import commit_unflushed
from broadcaster.db.models import Campaign, CampaignRun, Message
from broadcaster.outbox.handback import worker_id
from broadcaster.vocabulary import CampaignState, MessageStatus, RunStatus


def due(chunk_id: int, window: int, now: datetime) -> Select[int]:
    """The chunk's next ``window`` rows that may be sent now."""
    return (
        select(Message.id)
        .where(
            Message.chunk_id == chunk_id,
            Message.status == MessageStatus.QUEUED,
            Message.hold.is_(False),
            or_(Message.not_before.is_(None), Message.not_before <= now),
        )
        .order_by(Message.id)
        .limit(window)
    )


def due_count(readers: sessionmaker[Session], chunk_id: int, window: int, now: datetime) -> int:
    with readers() as session:
        rows = due(chunk_id, window, now).subquery()
        return int(session.scalar(select(func.count()).select_from(rows)) or 0)


def claim(sessions: sessionmaker[Session], chunk_id: int, window: int, now: datetime) -> Sequence[Any]:
    """Claim the chunk's next due rows for this worker (committed); what composing them needs.

    The commit need not wait for the disk: lost in a crash of the database server, the rows are queued again,
    and the worker's hand-over mark, which does wait, then finds them not claimed and writes nothing."""
    with sessions.begin() as session:
        commit_unflushed(session)
        rows = due(chunk_id, window, now).scalar_subquery()
        return session.execute(
            update(Message)
            .where(Message.id.in_(rows), Message.status == MessageStatus.QUEUED)
            .values(
                status=MessageStatus.SENDING,
                claimed_at=now,
                claimed_by=worker_id(),
                handed_at=None,
                attempts=Message.attempts + 1,
            )
            .returning(
                Message.id,
                Message.address,
                Message.address_key,
                Message.channel,
                Message.provider,
                Message.attempts,
                Message.campaign_id,
                Message.version_id,
                Message.purpose,
                Message.subject,
                Message.body,
                Message.context,
                Message.encoding,
                Message.provider_ref,
            )
        ).all()


def unclaim(sessions: sessionmaker[Session], ids: list[int], *, clock: Clock) -> None:
    """Claimed rows that never went back to the queue untouched (or cancelled, if their campaign or run
    was cancelled meanwhile)."""
    with sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.id.in_(ids), Message.status == MessageStatus.SENDING)
            .values(
                status=MessageStatus.QUEUED,
                attempts=Message.attempts - 1,
                claimed_at=None,
                claimed_by=None,
                handed_at=None,
            )
        )
        # A cancel that came while the window waited leaves nothing of it to send later.
        cancelled = select(Campaign.id).where(Campaign.state == CampaignState.CANCELLED)
        session.execute(
            update(Message)
            .where(
                Message.id.in_(ids),
                Message.status == MessageStatus.QUEUED,
                Message.campaign_id.in_(cancelled),
            )
            .values(status=MessageStatus.CANCELLED, reason="campaign cancelled", final_at=clock.now())
        )
        cancel_queued_of_cancelled_runs(session, Message.id.in_(ids), now=clock.now())


def release(sessions: sessionmaker[Session], chunk_id: int, *, not_before: datetime | None) -> None:
    """Hand the chunk's unclaimed rows back to the tick (which cuts new chunks when they are due)."""
    values: dict[str, Any] = {"chunk_id": None}
    if not_before is not None:
        values["not_before"] = not_before
    with sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.chunk_id == chunk_id, Message.status == MessageStatus.QUEUED)
            .values(**values)
        )


def mark_handed(sessions: sessionmaker[Session], message_ids: Sequence[int], *, clock: Clock) -> list[int]:
    """Record (committed) that these claimed messages are about to be written to their provider; returns
    those marked, the only ones that may be written. A message stopped since its claim (an opt-out suppressed
    it: ``pending.stop_pending``) is not marked, so either the stop or the hand-over wins, never both."""
    if not message_ids:
        return []
    with sessions.begin() as session:
        session.connection()  # SQLite: BEGIN IMMEDIATE, so the write lock is held from here
        # Stamped under the lock, like a withdrawal's recorded_at (inbound.apply_pending): the two times
        # then order as the commits did.
        now = clock.now()
        return list(
            session.scalars(
                update(Message)
                .where(
                    Message.id.in_(list(message_ids)),
                    Message.status == MessageStatus.SENDING,
                    Message.handed_at.is_(None),
                )
                .values(handed_at=now)
                .returning(Message.id)
            )
        )


def cancel_queued_of_cancelled_runs(session: Session, *where: Any, now: datetime) -> None:
    """Cancel the queued rows (matching ``where``) of runs that were cancelled, each with its run's reason."""
    runs = session.execute(
        select(CampaignRun.id, CampaignRun.ended_reason).where(
            CampaignRun.status == RunStatus.CANCELLED,
            CampaignRun.id.in_(select(Message.run_id).where(Message.status == MessageStatus.QUEUED, *where)),
        )
    ).all()
    for run_id, ended_reason in runs:
        session.execute(
            update(Message)
            .where(Message.run_id == run_id, Message.status == MessageStatus.QUEUED, *where)
            .values(status=MessageStatus.CANCELLED, reason=ended_reason or "run cancelled", final_at=now)
        )
