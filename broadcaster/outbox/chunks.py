"""Cut queued, due, unchunked messages into chunks per (channel, provider): the provider's ``chunk_size``,
else ``delivery.chunk_size``.

Used by the planner right after a run is planned and by the tick for rows that became due again
(deferrals, back-offs, a resumed campaign, a chunk whose task was lost).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.campaigns.schema import Priority
from broadcaster.campaigns.store import definition_of
from broadcaster.clock import Clock
from broadcaster.db.models import Campaign, CampaignRun, CampaignVersion, Chunk, Message
from broadcaster.outbox.queues import Enqueuer, send_queue
from broadcaster.outbox.routing import reroute_unchunked
from broadcaster.settings import Settings
from broadcaster.vocabulary import CampaignState, MessageKind, MessageStatus, RunStatus

SCAN_PAGE = 5000
STOPPED = (CampaignState.PAUSED, CampaignState.CANCELLED)


class UrgencyCache:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.known: dict[int | None, bool] = {None: False}

    def __call__(self, version_id: int | None) -> bool:
        if version_id not in self.known:
            version = self.session.get(CampaignVersion, version_id)
            self.known[version_id] = (
                version is not None and definition_of(version).priority == Priority.URGENT
            )
        return self.known[version_id]


def cut_chunks(
    session: Session,
    *,
    settings: Settings,
    clock: Clock,
    run_id: int | None = None,
    only_ids: Sequence[int] | None = None,
) -> list[tuple[int, str]]:
    """Create chunk rows and assign messages to them; returns (chunk id, queue) to enqueue after commit."""
    now = clock.now()
    if settings.routes:  # messages of an account that is down or slow go to a healthy one of their route
        reroute_unchunked(session, settings, now=now)
    sizes = {name: p.chunk_size or settings.delivery.chunk_size for name, p in settings.providers.items()}
    urgent = UrgencyCache(session)
    query = (
        select(Message.id, Message.channel, Message.provider, Message.version_id, Message.run_id)
        .outerjoin(Campaign, Campaign.id == Message.campaign_id)
        .outerjoin(CampaignRun, CampaignRun.id == Message.run_id)
        .where(
            Message.status == MessageStatus.QUEUED,
            Message.chunk_id.is_(None),
            Message.hold.is_(False),
            or_(Message.not_before.is_(None), Message.not_before <= now),
            or_(Message.campaign_id.is_(None), Campaign.state.not_in(STOPPED)),
            # A run still being planned is chunked by its planner, in audience order.
            or_(Message.run_id.is_(None), CampaignRun.status != RunStatus.PLANNING),
        )
        .order_by(Message.id)
        .limit(SCAN_PAGE)
    )
    if run_id is not None:
        query = query.where(Message.run_id == run_id)
    if only_ids is not None:
        query = query.where(Message.id.in_(only_ids))
    else:  # test messages are sent by the test send itself, at once; never by a later tick
        query = query.where(Message.kind != MessageKind.TEST)
    pending: dict[tuple[str, str, bool, int | None], list[int]] = defaultdict(list)
    created: list[tuple[int, str]] = []

    def flush(key: tuple[str, str, bool, int | None]) -> None:
        ids = pending.pop(key)
        channel, provider, is_urgent, run = key
        queue = send_queue(channel, provider, urgent=is_urgent)
        chunk = Chunk(
            run_id=run, channel=channel, provider=provider, queue=queue, size=len(ids), created_at=now
        )
        session.add(chunk)
        session.flush()
        session.execute(update(Message).where(Message.id.in_(ids)).values(chunk_id=chunk.id))
        created.append((chunk.id, queue))

    last = 0
    while True:
        rows = session.execute(query.where(Message.id > last)).all()
        if not rows:
            break
        for message_id, channel, provider, version_id, run in rows:
            key = (channel, provider, urgent(version_id), run)
            pending[key].append(message_id)
            if len(pending[key]) >= sizes.get(provider, settings.delivery.chunk_size):
                flush(key)
        last = rows[-1][0]
    for key in list(pending):
        flush(key)
    return created


def enqueue_chunks(
    sessions: sessionmaker[Session], enqueuer: Enqueuer, chunks: Sequence[tuple[int, str]], *, clock: Clock
) -> None:
    """Send the chunks' tasks (after their rows committed). When the broker refuses one (down, restarting),
    that chunk and the rest go back at once: finished, their rows unchunked for the next tick to cut again,
    instead of waiting ``stuck_after_seconds`` for the sweeper with no task to run them; then the error goes on
    to the caller."""
    sent = 0
    try:
        for chunk_id, queue in chunks:
            enqueuer.dispatch_chunk(chunk_id, queue=queue)
            sent += 1
    finally:
        unsent = [chunk_id for chunk_id, _queue in chunks[sent:]]
        if unsent:
            with sessions.begin() as session:
                session.execute(
                    update(Message)
                    .where(Message.chunk_id.in_(unsent), Message.status == MessageStatus.QUEUED)
                    .values(chunk_id=None)
                )
                session.execute(update(Chunk).where(Chunk.id.in_(unsent)).values(finished_at=clock.now()))
