"""The administration page's provider status: each provider's bind/relay health as its process last saw it
(``ProviderHealth``), the backlog (queued messages per provider, the oldest one's age) and the paused
campaigns with their reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcaster.db.models import Campaign, Message, ProviderHealth
from broadcaster.vocabulary import CampaignState, MessageStatus


@dataclass(frozen=True)
class Backlog:
    provider: str
    queued: int
    oldest_age: timedelta | None


@dataclass(frozen=True)
class ProviderStatus:
    health: list[ProviderHealth]
    backlog: list[Backlog]
    paused: list[Campaign]


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite hands the stored UTC moment back without its zone.
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def provider_status(session: Session, *, now: datetime) -> ProviderStatus:
    health = list(session.scalars(select(ProviderHealth).order_by(ProviderHealth.provider)))
    rows = session.execute(
        select(Message.provider, func.count(), func.min(Message.created_at))
        .where(Message.status == MessageStatus.QUEUED)
        .group_by(Message.provider)
        .order_by(Message.provider)
    ).all()
    backlog = []
    for provider, queued, oldest in rows:
        since = _utc(oldest)
        backlog.append(Backlog(provider, int(queued), now - since if since is not None else None))
    paused = list(
        session.scalars(select(Campaign).where(Campaign.state == CampaignState.PAUSED).order_by(Campaign.id))
    )
    return ProviderStatus(health, backlog, paused)
