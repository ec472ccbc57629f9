"""Cheap reads of the outbox that health, metrics and alerts share: each one an indexed query.

Messages waiting (``queued``, ``sending``, ``unknown``) are few next to settled ones and found through
``ix_messages_status_not_before``; totals by channel and status come from ``message_tallies`` on SQLite (kept by
triggers, migration 0013) and from ``ix_messages_status_channel`` on PostgreSQL, without the provider."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcaster.db.models import Campaign, InboundRecord, Message, MessageTally
from broadcaster.vocabulary import CampaignState, MessageStatus

WAITING = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.UNKNOWN)


@dataclass(frozen=True)
class Backlog:
    """The oldest due queued message: queued since ``since`` (its creation, or its deferral's end)."""

    since: datetime | None

    def age_seconds(self, now: datetime) -> float:
        return 0.0 if self.since is None else max(0.0, (now - self.since).total_seconds())


def backlog(session: Session, now: datetime) -> Backlog:
    """When the oldest message that is due and still queued became due: a deferred message (back-off, quiet
    hours) counts from its ``not_before``, so a campaign waiting for its window is not a backlog.

    The oldest undeferred one is the first by id (ids grow as messages are created; two runs planned at once
    interleave by a page at most): one entry of ``ix_messages_status_not_before`` (status, not_before, id),
    where the least ``created_at`` read every queued message (0.8 s on every tick with three million queued).
    The order names ``not_before`` (NULL in all of them) so that PostgreSQL sees the index's order; ordered by
    id alone it walked the primary key past every settled message (migration 0023)."""
    queued = Message.status == MessageStatus.QUEUED
    undeferred = session.scalar(
        select(Message.created_at)
        .where(queued, Message.not_before.is_(None))
        .order_by(Message.not_before, Message.id)
        .limit(1)
    )
    deferred = session.scalar(
        select(func.min(Message.not_before)).where(
            queued, Message.not_before.is_not(None), Message.not_before <= now
        )
    )
    moments = [m for m in (undeferred, deferred) if m is not None]
    return Backlog(min(moments) if moments else None)


def waiting_messages(session: Session) -> list[tuple[str, str, str, int]]:
    """(channel, provider, status, count) of the messages not settled yet."""
    rows = session.execute(
        select(Message.channel, Message.provider, Message.status, func.count())
        .where(Message.status.in_(WAITING))
        .group_by(Message.channel, Message.provider, Message.status)
    )
    return [
        (channel, provider, MessageStatus(status).value, count) for channel, provider, status, count in rows
    ]


def message_totals(session: Session) -> list[tuple[str, str, int]]:
    """(channel, status, count) of every message, test sends included."""
    if session.get_bind().dialect.name == "sqlite":
        rows = session.execute(
            select(MessageTally.channel, MessageTally.status, func.sum(MessageTally.messages)).group_by(
                MessageTally.channel, MessageTally.status
            )
        )
        return [(channel, status, int(count or 0)) for channel, status, count in rows]
    counted = session.execute(
        select(Message.channel, Message.status, func.count()).group_by(Message.status, Message.channel)
    )
    return [(channel, MessageStatus(status).value, count) for channel, status, count in counted]


def receipts_pending(session: Session) -> list[tuple[str, int]]:
    """(provider, count) of inbound records (receipts, bounces, replies) not applied yet."""
    rows = session.execute(
        select(InboundRecord.provider, func.count())
        .where(InboundRecord.processed_at.is_(None))
        .group_by(InboundRecord.provider)
    )
    return [(provider, count) for provider, count in rows]


def paused_campaigns(session: Session) -> list[tuple[str, str | None]]:
    """(campaign id, paused_reason as stored) of the paused campaigns."""
    rows = session.execute(
        select(Campaign.id, Campaign.paused_reason)
        .where(Campaign.state == CampaignState.PAUSED)
        .order_by(Campaign.id)
    )
    return [(campaign_id, reason) for campaign_id, reason in rows]
