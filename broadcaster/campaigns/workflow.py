"""Submit, approve, reject, schedule, pause, resume, cancel: each a guarded transition with an audit entry.

Approval binds to the content hash the approver saw (a prefix of it is required); the submitter cannot
approve; above the recipients threshold of the policies (``broadcaster policy``) a version needs a second,
different approver. When a newer version's approval completes, the older versions' runs that still have
messages waiting stop (or, when the approver says so, finish).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from broadcaster import audit, policies
from broadcaster.campaigns.preview import preview_version
from broadcaster.campaigns.store import (
    definition_of,
    get_campaign,
    get_version,
    latest_version,
    verify_snapshot,
)
from broadcaster.clock import Clock
from broadcaster.db.models import Approval, Campaign, CampaignRun, CampaignVersion, Message, User
from broadcaster.errors import StateError, UserError
from broadcaster.settings import Settings
from broadcaster.vocabulary import CampaignState, Decision, MessageStatus, RunStatus, VersionStatus

HASH_PREFIX_MIN = 8


def _log(
    session: Session,
    *,
    actor: User,
    action: str,
    campaign: Campaign,
    at: datetime,
    reason: str | None = None,
    **details: object,
) -> None:
    audit.record(
        session,
        actor=actor.login,
        action=f"campaign.{action}",
        subject_type="campaign",
        subject_id=campaign.id,
        at=at,
        reason=reason,
        details=details,
    )


def submit(
    session: Session,
    *,
    campaign_id: str,
    actor: User,
    settings: Settings,
    clock: Clock,
    reason: str | None = None,
) -> CampaignVersion:
    campaign = get_campaign(session, campaign_id)
    version = latest_version(session, campaign_id)
    if version.status != VersionStatus.DRAFT:
        raise StateError(
            f"campaign {campaign_id!r} version {version.number} is {version.status.value}; only a draft can be "
            "submitted (load a changed file to make a new draft)"
        )
    verify_snapshot(version)
    size = preview_version(session, version, settings, samples=0).reached_contacts
    version.audience_size = size
    version.required_approvals = 2 if size > policies.second_approver_threshold(session) else 1
    version.status = VersionStatus.SUBMITTED
    version.submitted_by = actor.login
    version.submitted_at = clock.now()
    _log(
        session,
        actor=actor,
        action="submit",
        campaign=campaign,
        at=clock.now(),
        reason=reason,
        version=version.number,
        content_hash=version.content_hash,
        audience_size=size,
        required_approvals=version.required_approvals,
    )
    return version


def _require_hash(campaign_id: str, content_hash: str | None) -> str:
    """The approver names what they reviewed: without it a newer version could be approved unseen."""
    if not content_hash or len(content_hash.strip()) < HASH_PREFIX_MIN:
        raise UserError(
            f"--hash needs at least {HASH_PREFIX_MIN} characters of the content hash of the version you reviewed; "
            f"`broadcaster campaigns preview {campaign_id}` and `broadcaster status {campaign_id}` show it"
        )
    return content_hash.strip()


def _version_for_decision(
    session: Session, campaign_id: str, number: int | None, content_hash: str | None
) -> CampaignVersion:
    content_hash = _require_hash(campaign_id, content_hash)
    version = get_version(session, campaign_id, number)
    latest = latest_version(session, campaign_id)
    if version.status == VersionStatus.SUPERSEDED:
        raise StateError(
            f"campaign {campaign_id!r} version {version.number} is stale: version {latest.number} was loaded "
            f"after it. Preview version {latest.number} and decide on that one."
        )
    if not version.content_hash.startswith(content_hash.lower()):
        raise StateError(
            f"campaign {campaign_id!r} version {version.number} has content hash {version.content_hash[:12]}…, "
            f"not {content_hash}…: what you reviewed is stale. Run `broadcaster campaigns preview {campaign_id}` again."
        )
    if version.status != VersionStatus.SUBMITTED:
        raise StateError(
            f"campaign {campaign_id!r} version {version.number} is {version.status.value}, not submitted; "
            "an editor submits it first (`broadcaster campaigns submit`)"
        )
    return version


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


def _settle_older_runs(
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
        _log(
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
    _log(
        session,
        actor=actor,
        action="older_runs_stopped",
        campaign=campaign,
        at=now,
        version=version.number,
        runs=list(found.run_ids),
        cancelled_messages=int(getattr(result, "rowcount", 0)),
    )


def approve(
    session: Session,
    *,
    campaign_id: str,
    actor: User,
    clock: Clock,
    content_hash: str | None,
    version_number: int | None = None,
    reason: str | None = None,
    keep_pending: bool = False,
) -> CampaignVersion:
    """Record an approval; when it completes the version, the campaign sends it from now on.

    ``keep_pending``: the older versions' runs that still have messages waiting finish instead of stopping."""
    campaign = get_campaign(session, campaign_id)
    version = _version_for_decision(session, campaign_id, version_number, content_hash)
    if actor.login == version.submitted_by:
        raise StateError(
            f"you submitted version {version.number} of {campaign_id!r}; another user must approve it"
        )
    if any(a.user_login == actor.login for a in version.approvals):
        raise StateError(
            f"you have already approved version {version.number} of {campaign_id!r}; it needs a different second approver"
        )
    verify_snapshot(version)
    now = clock.now()
    session.add(
        Approval(
            version=version,
            user_login=actor.login,
            content_hash=version.content_hash,
            decision=Decision.APPROVE,
            reason=reason,
            decided_at=now,
        )
    )
    session.flush()
    approvals = sum(1 for a in version.approvals if a.decision == Decision.APPROVE)
    complete = approvals >= version.required_approvals
    if complete:
        version.status = VersionStatus.APPROVED
        previous = campaign.approved_version_id
        campaign.approved_version_id = version.id
        if campaign.state in (CampaignState.DRAFT, CampaignState.COMPLETED):
            campaign.state = CampaignState.APPROVED
        elif campaign.state == CampaignState.SCHEDULED:
            _set_next_occurrence(campaign, version, now)
        if previous is not None and previous != version.id:
            old = session.get(CampaignVersion, previous)
            if old is not None:
                old.status = VersionStatus.SUPERSEDED
        campaign.updated_at = now
        _settle_older_runs(
            session, campaign=campaign, version=version, actor=actor, now=now, keep_pending=keep_pending
        )
    _log(
        session,
        actor=actor,
        action="approve",
        campaign=campaign,
        at=now,
        reason=reason,
        version=version.number,
        content_hash=version.content_hash,
        approvals=approvals,
        required=version.required_approvals,
        complete=complete,
    )
    return version


def reject(
    session: Session,
    *,
    campaign_id: str,
    actor: User,
    clock: Clock,
    reason: str,
    content_hash: str | None,
    version_number: int | None = None,
) -> CampaignVersion:
    if not reason or not reason.strip():
        raise UserError("a rejection needs a reason (--reason) so the editor knows what to change")
    campaign = get_campaign(session, campaign_id)
    version = _version_for_decision(session, campaign_id, version_number, content_hash)
    if actor.login == version.submitted_by:
        raise StateError("you cannot decide on a version you submitted; load a changed file instead")
    if any(a.user_login == actor.login for a in version.approvals):
        # One decision per person and version (the approvals table's unique key): the first approver of a
        # two-approver version cannot also reject it.
        raise StateError(
            f"you have already approved version {version.number} of {campaign_id!r}; another approver may "
            "reject it, or the editor loads a changed file"
        )
    now = clock.now()
    session.add(
        Approval(
            version=version,
            user_login=actor.login,
            content_hash=version.content_hash,
            decision=Decision.REJECT,
            reason=reason,
            decided_at=now,
        )
    )
    version.status = VersionStatus.REJECTED
    _log(
        session,
        actor=actor,
        action="reject",
        campaign=campaign,
        at=now,
        reason=reason,
        version=version.number,
        content_hash=version.content_hash,
    )
    return version


def approved_version(session: Session, campaign: Campaign) -> CampaignVersion:
    if campaign.approved_version_id is None:
        raise StateError(
            f"campaign {campaign.id!r} has no approved version; submit it and have it approved first"
        )
    version = session.get(CampaignVersion, campaign.approved_version_id)
    assert version is not None
    verify_snapshot(version)
    return version


def _set_next_occurrence(campaign: Campaign, version: CampaignVersion, now: datetime) -> None:
    schedule = definition_of(version).schedule
    campaign.next_occurrence_at = schedule.next_occurrence(now) if schedule is not None else None


def schedule(
    session: Session, *, campaign_id: str, actor: User, clock: Clock, reason: str | None = None
) -> Campaign:
    campaign = get_campaign(session, campaign_id)
    if campaign.state not in (CampaignState.APPROVED, CampaignState.SCHEDULED):
        raise StateError(
            f"campaign {campaign_id!r} is {campaign.state.value}; only an approved campaign can be scheduled"
        )
    version = approved_version(session, campaign)
    if definition_of(version).schedule is None:
        raise StateError(
            f"campaign {campaign_id!r} has no schedule section; send it once with `broadcaster send {campaign_id}`"
        )
    now = clock.now()
    _set_next_occurrence(campaign, version, now)
    if campaign.next_occurrence_at is None:
        raise StateError(
            f"campaign {campaign_id!r} has no occurrence left after {now.isoformat()}; check schedule.until"
        )
    campaign.state = CampaignState.SCHEDULED
    campaign.updated_at = now
    _log(
        session,
        actor=actor,
        action="schedule",
        campaign=campaign,
        at=now,
        reason=reason,
        version=version.number,
        next_occurrence_at=campaign.next_occurrence_at.isoformat(),
    )
    return campaign


def pause(
    session: Session,
    *,
    campaign_id: str,
    actor: User | None,
    clock: Clock,
    reason: str | None = None,
    system: str | None = None,
) -> Campaign:
    """Stop sending at the next window. ``actor`` None with ``system`` set: the engine paused itself."""
    campaign = get_campaign(session, campaign_id)
    if campaign.state in (CampaignState.CANCELLED, CampaignState.COMPLETED, CampaignState.PAUSED):
        raise StateError(f"campaign {campaign_id!r} is {campaign.state.value}; it cannot be paused")
    now = clock.now()
    campaign.paused_reason = f"{campaign.state.value}{_PAUSE_SEPARATOR}{reason or ''}"
    campaign.state = CampaignState.PAUSED
    campaign.updated_at = now
    audit.record(
        session,
        actor=actor.login if actor else (system or "engine"),
        action="campaign.pause",
        subject_type="campaign",
        subject_id=campaign.id,
        at=now,
        reason=reason,
    )
    return campaign


# ``paused_reason`` keeps the state to return to and the reason: "<state>|<reason>". Read it only here.
_PAUSE_SEPARATOR = "|"


def pause_reason(campaign: Campaign) -> str | None:
    """Why a paused campaign was paused (None when it is not paused or no reason was given)."""
    if not campaign.paused_reason:
        return None
    return campaign.paused_reason.partition(_PAUSE_SEPARATOR)[2] or None


def _state_before_pause(campaign: Campaign) -> CampaignState:
    previous = (campaign.paused_reason or "").partition(_PAUSE_SEPARATOR)[0]
    return CampaignState(previous) if previous in {s.value for s in CampaignState} else CampaignState.APPROVED


def resume(
    session: Session, *, campaign_id: str, actor: User, clock: Clock, reason: str | None = None
) -> Campaign:
    campaign = get_campaign(session, campaign_id)
    if campaign.state != CampaignState.PAUSED:
        raise StateError(f"campaign {campaign_id!r} is {campaign.state.value}, not paused")
    campaign.state = _state_before_pause(campaign)
    campaign.paused_reason = None
    campaign.updated_at = clock.now()
    # Rows left in the chunks that stopped at the pause go back to the tick, which cuts fresh chunks.
    session.execute(
        update(Message)
        .where(Message.campaign_id == campaign.id, Message.status == MessageStatus.QUEUED)
        .values(chunk_id=None)
    )
    _log(session, actor=actor, action="resume", campaign=campaign, at=clock.now(), reason=reason)
    return campaign


def cancel(
    session: Session, *, campaign_id: str, actor: User, clock: Clock, reason: str | None = None
) -> Campaign:
    campaign = get_campaign(session, campaign_id)
    if campaign.state in (CampaignState.CANCELLED, CampaignState.COMPLETED):
        raise StateError(f"campaign {campaign_id!r} is already {campaign.state.value}")
    now = clock.now()
    campaign.state = CampaignState.CANCELLED
    campaign.next_occurrence_at = None
    campaign.updated_at = now
    # Messages not yet claimed will never go; a claimed window finishes (it is already on the wire).
    result = session.execute(
        update(Message)
        .where(Message.campaign_id == campaign.id, Message.status == MessageStatus.QUEUED)
        .values(status=MessageStatus.CANCELLED, reason="campaign cancelled", final_at=now)
    )
    cancelled = int(getattr(result, "rowcount", 0))
    session.execute(
        update(CampaignRun)
        .where(
            CampaignRun.campaign_id == campaign.id,
            CampaignRun.status.in_([RunStatus.PLANNING, RunStatus.SENDING]),
        )
        .values(
            status=RunStatus.CANCELLED, finished_at=now, ended_reason=f"campaign cancelled by {actor.login}"
        )
    )
    _log(
        session,
        actor=actor,
        action="cancel",
        campaign=campaign,
        at=now,
        reason=reason,
        cancelled_messages=cancelled,
    )
    return campaign


def versions_of(session: Session, campaign_id: str) -> list[CampaignVersion]:
    return list(
        session.scalars(
            select(CampaignVersion)
            .where(CampaignVersion.campaign_id == campaign_id)
            .order_by(CampaignVersion.number)
        )
    )
