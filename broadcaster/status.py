"""A campaign's whole state in one structure: versions, approvals, runs and message counts by status
(test sends counted apart)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcaster.campaigns.store import get_campaign
from broadcaster.campaigns.workflow import pause_reason
from broadcaster.clock import local
from broadcaster.db.models import CampaignRun, Message
from broadcaster.vocabulary import MessageKind


def _iso(value: Any) -> str | None:
    return local(value).isoformat() if value is not None else None


def message_counts(
    session: Session, *, exclude_kind: MessageKind | None = None, **where: Any
) -> dict[str, dict[str, int]]:
    """{channel: {status: count}} for the messages matching ``where`` (column=value), but ``exclude_kind``."""
    query = select(Message.channel, Message.status, func.count()).group_by(Message.channel, Message.status)
    for column, value in where.items():
        query = query.where(getattr(Message, column) == value)
    if exclude_kind is not None:
        query = query.where(Message.kind != exclude_kind)
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for channel, status, count in session.execute(query):
        counts[channel][status.value] = count
    return dict(counts)


def runs_message_counts(session: Session, run_ids: Collection[int]) -> dict[int, dict[str, dict[str, int]]]:
    """``message_counts(run_id=…)`` of several runs in one query: {run id: {channel: {status: count}}}. The
    index on (run_id, channel, status) answers it without reading a message row (migration 0012)."""
    counts: dict[int, dict[str, dict[str, int]]] = {run_id: {} for run_id in run_ids}
    if not run_ids:
        return counts
    query = (
        select(Message.run_id, Message.channel, Message.status, func.count())
        .where(Message.run_id.in_(list(run_ids)))
        .group_by(Message.run_id, Message.channel, Message.status)
    )
    for run_id, channel, status, count in session.execute(query):
        assert run_id is not None  # selected by run_id
        counts[run_id].setdefault(channel, {})[status.value] = count
    return counts


def campaign_status(session: Session, campaign_id: str) -> dict[str, Any]:
    campaign = get_campaign(session, campaign_id)
    versions = [
        {
            "number": v.number,
            "status": v.status.value,
            "content_hash": v.content_hash,
            "created_by": v.created_by,
            "created_at": _iso(v.created_at),
            "submitted_by": v.submitted_by,
            "submitted_at": _iso(v.submitted_at),
            "audience_size": v.audience_size,
            "required_approvals": v.required_approvals,
            "decisions": [
                {
                    "by": a.user_login,
                    "decision": a.decision.value,
                    "content_hash": a.content_hash,
                    "reason": a.reason,
                    "at": _iso(a.decided_at),
                }
                for a in v.approvals
            ],
        }
        for v in campaign.versions
    ]
    approved = next((v.number for v in campaign.versions if v.id == campaign.approved_version_id), None)
    runs = []
    for run in session.scalars(
        select(CampaignRun).where(CampaignRun.campaign_id == campaign_id).order_by(CampaignRun.id)
    ):
        runs.append(
            {
                "id": run.id,
                "occurrence_at": _iso(run.occurrence_at),
                "trigger": run.trigger,
                "status": run.status.value,
                "planned_messages": run.planned_messages,
                "messages": message_counts(session, run_id=run.id),
                "finished_at": _iso(run.finished_at),
                "ended_reason": run.ended_reason,
            }
        )
    return {
        "id": campaign.id,
        "title": campaign.title,
        "state": campaign.state.value,
        "paused_reason": pause_reason(campaign),
        "approved_version": approved,
        "next_occurrence_at": _iso(campaign.next_occurrence_at),
        "versions": versions,
        "runs": runs,
        # Test sends are not the campaign's messages: they went to officers, before approval.
        "messages": message_counts(session, campaign_id=campaign_id, exclude_kind=MessageKind.TEST),
        "test_sends": message_counts(session, campaign_id=campaign_id, kind=MessageKind.TEST),
    }
