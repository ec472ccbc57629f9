"""A run's chunks cut while it is planned: each page's rows get their chunk before they are inserted, so no
second pass rewrites every row's ``chunk_id`` (on PostgreSQL a new version of the row, with an entry in each
of its indexes; docs/architecture.md, "Planning at scale").

The chunks are the ones ``chunks.cut_chunks`` would cut after the planning: per (channel, provider), in the
order the rows are inserted, each as large as the provider's ``chunk_size`` (else ``delivery.chunk_size``);
only queued rows that are due now. A chunk may span pages: its row and size commit with each page's rows and
the run's checkpoint, and a planner that starts again (or finds that another planner of the run moved the
checkpoint) reads the open chunks back from the database. The chunks are enqueued once the whole run is
planned and committed (``ready``), as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from broadcaster.db.models import Campaign, CampaignRun, Chunk, Message
from broadcaster.outbox.chunks import STOPPED
from broadcaster.outbox.queues import send_queue
from broadcaster.settings import Settings
from broadcaster.vocabulary import MessageStatus

_UNREAD = object()  # the checkpoint before this planner has read the run's chunks


@dataclass
class _Open:
    id: int
    size: int


class PlanChunks:
    """The open chunk of each (channel, provider) of one run while its planner inserts pages."""

    def __init__(self, *, run_id: int, urgent: bool, settings: Settings) -> None:
        self.run_id = run_id
        self.urgent = urgent
        self.default_size = settings.delivery.chunk_size
        self.sizes = {name: p.chunk_size or self.default_size for name, p in settings.providers.items()}
        self._open: dict[tuple[str, str], _Open] = {}
        self._checkpoint: object = _UNREAD
        self._touched: dict[int, _Open] = {}

    def assign(
        self, session: Session, rows: Sequence[dict[str, Any]], *, checkpoint: int, now: datetime
    ) -> None:
        """Set ``chunk_id`` on the due queued rows, in order, creating chunks as they fill. ``checkpoint``:
        the run's, read under its lock; another value than this planner left means another planner of the
        run committed pages in between, so the open chunks are read again."""
        if checkpoint != self._checkpoint:
            self._open = self._read_open(session)
        self._checkpoint = checkpoint
        self._touched = {}
        for row in rows:
            if row["status"] != MessageStatus.QUEUED or row["hold"]:
                continue
            if row["not_before"] is not None and row["not_before"] > now:
                continue  # deferred: the tick cuts it once it is due
            key = (row["channel"], row["provider"])
            chunk = self._open.get(key)
            if chunk is None or chunk.size >= self.sizes.get(key[1], self.default_size):
                chunk = self._open[key] = self._create(session, key, now)
            chunk.size += 1
            row["chunk_id"] = chunk.id
            self._touched[chunk.id] = chunk

    def settle(self, session: Session, *, inserted: int, given: int, checkpoint: int) -> None:
        """After the insert of the rows ``assign`` saw: store the chunks' sizes. Fewer rows inserted than
        given (some were there already: another planner's) are counted back from the rows themselves."""
        if inserted != given and self._touched:
            counted = dict(
                session.execute(
                    select(Message.chunk_id, func.count())
                    .where(Message.chunk_id.in_(list(self._touched)))
                    .group_by(Message.chunk_id)
                ).all()
            )
            for chunk_id, chunk in self._touched.items():
                chunk.size = counted.get(chunk_id, 0)
            empty = [chunk_id for chunk_id, chunk in self._touched.items() if chunk.size == 0]
            if empty:
                session.execute(delete(Chunk).where(Chunk.id.in_(empty)))
                self._open = {key: c for key, c in self._open.items() if c.size > 0}
        for chunk_id, chunk in self._touched.items():
            if chunk.size:
                session.execute(update(Chunk).where(Chunk.id == chunk_id).values(size=chunk.size))
        self._touched = {}
        self._checkpoint = checkpoint

    def ready(self, session: Session, *, now: datetime) -> list[tuple[int, str]]:
        """In the transaction that ends the planning: the run's chunks to enqueue after it commits, as
        (chunk id, queue). A chunk someone finished meanwhile (a dead worker's queues released) gives its rows
        back to the tick; when the campaign was paused or cancelled, all of them go back (as ``cut_chunks``
        would not have cut them)."""
        of_run = select(Chunk.id).where(Chunk.run_id == self.run_id)
        unfinished = of_run.where(Chunk.finished_at.is_(None))
        session.execute(
            update(Message)
            .where(
                Message.chunk_id.in_(of_run.where(Chunk.finished_at.is_not(None))),
                Message.status == MessageStatus.QUEUED,
            )
            .values(chunk_id=None)
        )
        state = session.scalar(
            select(Campaign.state)
            .join(CampaignRun, CampaignRun.campaign_id == Campaign.id)
            .where(CampaignRun.id == self.run_id)
        )
        if state in STOPPED:
            session.execute(
                update(Message)
                .where(Message.chunk_id.in_(unfinished), Message.status == MessageStatus.QUEUED)
                .values(chunk_id=None)
            )
            session.execute(update(Chunk).where(Chunk.id.in_(unfinished)).values(finished_at=now))
            return []
        # The sweeper counts a chunk lost some time after its creation: from now, when its task is sent.
        session.execute(update(Chunk).where(Chunk.id.in_(unfinished)).values(created_at=now))
        found = session.execute(
            select(Chunk.id, Chunk.queue)
            .where(Chunk.run_id == self.run_id, Chunk.finished_at.is_(None))
            .order_by(Chunk.id)
        ).all()
        return [(chunk_id, queue) for chunk_id, queue in found]

    def _read_open(self, session: Session) -> dict[tuple[str, str], _Open]:
        found = session.execute(
            select(Chunk.id, Chunk.channel, Chunk.provider, Chunk.size)
            .where(Chunk.run_id == self.run_id, Chunk.finished_at.is_(None))
            .order_by(Chunk.id)
        ).all()
        return {(channel, provider): _Open(chunk_id, size) for chunk_id, channel, provider, size in found}

    def _create(self, session: Session, key: tuple[str, str], now: datetime) -> _Open:
        channel, provider = key
        chunk_id = session.scalar(
            insert(Chunk)
            .values(
                run_id=self.run_id,
                channel=channel,
                provider=provider,
                queue=send_queue(channel, provider, urgent=self.urgent),
                size=0,
                created_at=now,
            )
            .returning(Chunk.id)
        )
        assert chunk_id is not None
        return _Open(chunk_id, 0)
