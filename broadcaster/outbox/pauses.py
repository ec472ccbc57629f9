"""Whether a chunk may go on, asked before every window: a paused or cancelled campaign stops it, a
cancelled run's rows are cancelled, and outside the send window the rest waits for its opening. And the
pauses the engine decides itself (a provider's configuration error, a window over the failure threshold)."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.campaigns import workflow
from broadcaster.clock import Clock
from broadcaster.db.models import Campaign, CampaignRun, Chunk, Message
from broadcaster.outbox.claims import cancel_queued_of_cancelled_runs, release
from broadcaster.outbox.composition import VersionCache
from broadcaster.vocabulary import CampaignState, MessageStatus, RunStatus
from channels.masking import mask_text

log = logging.getLogger(__name__)


def check_state(
    chunk_id: int,
    *,
    sessions: sessionmaker[Session],
    readers: sessionmaker[Session],
    versions: VersionCache,
    clock: Clock,
) -> str | None:
    """Why the chunk stops: a paused or cancelled campaign, or a cancelled run (a newer version was
    approved); outside the send window, the rest is deferred to its opening. None: it may go on."""
    with readers() as session:
        row = session.execute(
            select(Campaign.id, Campaign.state, CampaignRun.id, CampaignRun.status, CampaignRun.version_id)
            .select_from(Chunk)
            .join(CampaignRun, CampaignRun.id == Chunk.run_id)
            .join(Campaign, Campaign.id == CampaignRun.campaign_id)
            .where(Chunk.id == chunk_id)
        ).first()
        if row is None:  # test sends have no run
            return None
        campaign_id, state, run_id, run_status, version_id = row
        if state in (CampaignState.PAUSED, CampaignState.CANCELLED):
            return f"campaign {campaign_id} is {state.value}"
        definition = versions.definition(session, version_id)
    if run_status == RunStatus.CANCELLED:  # e.g. a newer version was approved: its rows never go
        with sessions.begin() as session:
            cancel_queued_of_cancelled_runs(session, Message.chunk_id == chunk_id, now=clock.now())
        return f"run {run_id} is cancelled"
    if definition.schedule is not None and definition.schedule.window is not None:
        tz = ZoneInfo(definition.schedule.timezone)
        now = clock.now()
        if not definition.schedule.window.contains(now, tz):
            opens = definition.schedule.window.next_open(now, tz)
            release(sessions, chunk_id, not_before=opens)
            return f"outside the send window; deferred to {opens.isoformat()}"
    return None


def pause_provider(session: Session, provider: str, reason: str, *, clock: Clock) -> None:
    """Pause every campaign with rows still queued for this provider."""
    campaign_ids = set(
        session.scalars(
            select(Message.campaign_id)
            .where(
                Message.provider == provider,
                Message.status == MessageStatus.QUEUED,
                Message.campaign_id.is_not(None),
            )
            .distinct()
        )
    )
    pause_campaigns(session, campaign_ids, reason, clock=clock)


def pause_campaigns(session: Session, campaign_ids: set[str | None], reason: str, *, clock: Clock) -> None:
    for campaign_id in sorted(c for c in campaign_ids if c):
        campaign = session.get(Campaign, campaign_id)
        if campaign is not None and campaign.state not in (
            CampaignState.PAUSED,
            CampaignState.CANCELLED,
            CampaignState.COMPLETED,
        ):
            workflow.pause(
                session,
                campaign_id=campaign_id,
                actor=None,
                clock=clock,
                reason=reason,
                system="engine",
            )
            # The reason may quote a provider's answer, and with it a recipient's address.
            log.warning(
                "paused campaign %s: %s", campaign_id, mask_text(reason), extra={"campaign_id": campaign_id}
            )
