"""The runs of a campaign's older versions when a newer version's approval completes: stopped, or let finish.

A version is approved because the older one was wrong: people must not get both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from broadcaster.campaigns.transition_log import log_transition
from broadcaster.db.models import Campaign, CampaignRun, CampaignVersion, Message, User
from broadcaster.vocabulary import MessageStatus, RunStatus

__all__ = ["OlderRuns", "older_runs", "settle_older_runs"]


@dataclass(frozen=True)
class OlderRuns:
    """Runs of older versions of a campaign that would still send: their ids and messages waiting."""

    run_ids: tuple[int, ...]
    pending: int  # queued messages, including those waiting for their send window (``not_before``)


def older_runs(session: Session, *, campaign_id: str, version_id: int) -> OlderRuns:
    """Runs of other versions than ``version_id`` still being planned, or sending with messages queued."""
    queued = (
        select(Message.run_id, func.count().label("queued"))
        .where(Message.campaign_id == campaign_id, Message.status == MessageStatus.QUEUED)
        .group_by(Message.run_id)
        .subquery()
    )
    rows = session.execute(
        select(CampaignRun.id, CampaignRun.status, func.coalesce(queued.c.queued, 0))
        .outerjoin(queued, queued.c.run_id == CampaignRun.id)
        .where(
            CampaignRun.campaign_id == campaign_id,
            CampaignRun.version_id != version_id,
            CampaignRun.status.in_([RunStatus.PLANNING, RunStatus.SENDING]),
        )
        .order_by(CampaignRun.id)
    ).all()
    waiting = [(run_id, count) for run_id, status, count in rows if status == RunStatus.PLANNING or count]
    return OlderRuns(tuple(run_id for run_id, _ in waiting), sum(count for _, count in waiting))


def settle_older_runs(
    session: Session,
    *,
    campaign: Campaign,
    version: CampaignVersion,
    actor: User,
    now: datetime,
    keep_pending: bool,
) -> None:
    """Stop (or, with ``keep_pending``, let finish) the older versions' runs that still have messages waiting.

    A version is approved because the older one was wrong: people must not get both. Messages already on the
    wire finish; the dispatcher and the planner check the run's status before each window and page."""
    found = older_runs(session, campaign_id=campaign.id, version_id=version.id)
    if not found.run_ids:
        return
    if keep_pending:
        log_transition(
            session,
            actor=actor,
            action="older_runs_kept",
            campaign=campaign,
            at=now,
            version=version.number,
            runs=list(found.run_ids),
            pending_messages=found.pending,
        )
        return
    reason = f"superseded by version {version.number}"
    # The runs first: a planner holding a run's row finishes its page before the messages are cancelled.
    session.execute(
        update(CampaignRun)
        .where(
            CampaignRun.id.in_(found.run_ids),
            CampaignRun.status.in_([RunStatus.PLANNING, RunStatus.SENDING]),
        )
        .values(
            status=RunStatus.CANCELLED, finished_at=now, ended_reason=f"{reason} (approved by {actor.login})"
        )
    )
    result = session.execute(
        update(Message)
        .where(Message.run_id.in_(found.run_ids), Message.status == MessageStatus.QUEUED)
        .values(status=MessageStatus.CANCELLED, reason=reason, final_at=now)
    )
    log_transition(
        session,
        actor=actor,
        action="older_runs_stopped",
        campaign=campaign,
        at=now,
        version=version.number,
        runs=list(found.run_ids),
        cancelled_messages=int(getattr(result, "rowcount", 0)),
    )
