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
from broadcaster.db.models import CampaignRun, Message, MessageTally
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


def _tallied(session: Session) -> bool:
    """Whether triggers keep ``message_tallies`` (SQLite; migration 0013), else the messages are counted."""
    return session.get_bind().dialect.name == "sqlite"


def runs_message_counts(session: Session, run_ids: Collection[int]) -> dict[int, dict[str, dict[str, int]]]:
    """``message_counts(run_id=…)`` of several runs in one query: {run id: {channel: {status: count}}}, from
    a few rows of the tallies whatever the number of messages."""
    counts: dict[int, dict[str, dict[str, int]]] = {run_id: {} for run_id in run_ids}
    read = tallied_runs if _tallied(session) else counted_runs
    for run_id, channel, status, count in read(session, run_ids) if run_ids else []:
        counts[run_id].setdefault(channel, {})[status] = count
    return counts


def run_counts(session: Session, run_id: int) -> dict[str, dict[str, int]]:
    """``runs_message_counts`` of one run: {channel: {status: count}}."""
    return runs_message_counts(session, [run_id])[run_id]


def campaign_counts(session: Session, campaign_id: str, *, tests: bool) -> dict[str, dict[str, int]]:
    """{channel: {status: count}} of a campaign's messages (of every run and of none), test sends apart:
    ``tests`` counts only them, else all but them."""
    if not _tallied(session):
        if tests:
            return message_counts(session, campaign_id=campaign_id, kind=MessageKind.TEST)
        return message_counts(session, campaign_id=campaign_id, exclude_kind=MessageKind.TEST)
    test = MessageTally.kind == MessageKind.TEST.value
    total = func.sum(MessageTally.messages)
    query = (
        select(MessageTally.channel, MessageTally.status, total)
        .where(MessageTally.campaign_id == campaign_id, test if tests else ~test)
        .group_by(MessageTally.channel, MessageTally.status)
        .having(total > 0)
        .order_by(MessageTally.channel, MessageTally.status)
    )
    counts: dict[str, dict[str, int]] = {}
    for channel, status, count in session.execute(query):
        counts.setdefault(channel, {})[status] = int(count)
    return counts


def tallied_runs(session: Session, run_ids: Collection[int]) -> list[tuple[int, str, str, int]]:
    """(run id, channel, status, count) of the runs from ``message_tallies``, every kind added up; statuses
    no message is in any more are left out, as a count of the messages would."""
    total = func.sum(MessageTally.messages)
    query = (
        select(MessageTally.run_id, MessageTally.channel, MessageTally.status, total)
        .where(MessageTally.run_id.in_(list(run_ids)))
        .group_by(MessageTally.run_id, MessageTally.channel, MessageTally.status)
        .having(total > 0)
        .order_by(MessageTally.run_id, MessageTally.channel, MessageTally.status)
    )
    return [
        (run_id, channel, status, int(count)) for run_id, channel, status, count in session.execute(query)
    ]


def counted_runs(session: Session, run_ids: Collection[int]) -> list[tuple[int, str, str, int]]:
    """(run id, channel, status, count) of the runs' messages, counted on the index of (run_id, channel,
    status) (migration 0012): what ``tallied_runs`` reads, the long way."""
    query = (
        select(Message.run_id, Message.channel, Message.status, func.count())
        .where(Message.run_id.in_(list(run_ids)))
        .group_by(Message.run_id, Message.channel, Message.status)
        .order_by(Message.run_id, Message.channel, Message.status)
    )
    rows = []
    for run_id, channel, status, count in session.execute(query):
        assert run_id is not None  # selected by run_id
        rows.append((run_id, channel, status.value, count))
    return rows


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
    all_runs = list(
        session.scalars(
            select(CampaignRun).where(CampaignRun.campaign_id == campaign_id).order_by(CampaignRun.id)
        )
    )
    run_counts = runs_message_counts(session, [run.id for run in all_runs])
    for run in all_runs:
        runs.append(
            {
                "id": run.id,
                "occurrence_at": _iso(run.occurrence_at),
                "trigger": run.trigger,
                "status": run.status.value,
                "planned_messages": run.planned_messages,
                "messages": run_counts[run.id],
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
        "messages": campaign_counts(session, campaign_id, tests=False),
        "test_sends": campaign_counts(session, campaign_id, tests=True),
    }
