"""Campaign transitions: submit, approve, reject, schedule, pause, resume, cancel, each guarded and audited.

The review (submit, approve, reject) lives in ``approval`` and is re-exported here, so callers use one module;
this module holds what happens to an approved campaign: schedule, pause, resume and cancel.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.campaigns.approval import HASH_PREFIX_MIN, approve, reject, set_next_occurrence, submit
from broadcaster.campaigns.older_runs import OlderRuns, older_runs
from broadcaster.campaigns.store import definition_of, get_campaign, verify_snapshot
from broadcaster.campaigns.transition_log import log_transition
from broadcaster.clock import Clock
from broadcaster.db.models import Campaign, CampaignRun, CampaignVersion, Message, User
from broadcaster.db.rows import required
from broadcaster.errors import StateError
from broadcaster.i18n import gettext as _
from broadcaster.vocabulary import CampaignState, MessageStatus, RunStatus

__all__ = [
    "HASH_PREFIX_MIN",
    "OlderRuns",
    "approve",
    "approved_version",
    "cancel",
    "older_runs",
    "pause",
    "pause_reason",
    "reject",
    "resume",
    "schedule",
    "submit",
    "versions_of",
]


def approved_version(session: Session, campaign: Campaign) -> CampaignVersion:
    if campaign.approved_version_id is None:
        raise StateError(
            _("campaign '%(campaign)s' has no approved version; submit it and have it approved first")
            % {"campaign": campaign.id}
        )
    version = required(
        session, CampaignVersion, campaign.approved_version_id, referenced_by=f"campaign {campaign.id!r}"
    )
    verify_snapshot(version)
    return version


def schedule(
    session: Session, *, campaign_id: str, actor: User, clock: Clock, reason: str | None = None
) -> Campaign:
    campaign = get_campaign(session, campaign_id)
    if campaign.state not in (CampaignState.APPROVED, CampaignState.SCHEDULED):
        raise StateError(
            _("campaign '%(campaign)s' is %(state)s; only an approved campaign can be scheduled")
            % {"campaign": campaign_id, "state": _(campaign.state.value)}
        )
    version = approved_version(session, campaign)
    if definition_of(version).schedule is None:
        raise StateError(
            _(
                "campaign '%(campaign)s' has no schedule section; send it once with `broadcaster send %(campaign)s`"
            )
            % {"campaign": campaign_id}
        )
    now = clock.now()
    set_next_occurrence(campaign, version, now)
    if campaign.next_occurrence_at is None:
        raise StateError(
            _("campaign '%(campaign)s' has no occurrence left after %(now)s; check schedule.until")
            % {"campaign": campaign_id, "now": now.isoformat()}
        )
    before = campaign.state
    campaign.state = CampaignState.SCHEDULED
    campaign.updated_at = now
    log_transition(
        session,
        actor=actor,
        action="schedule",
        campaign=campaign,
        at=now,
        reason=reason,
        state={"from": before.value, "to": campaign.state.value},
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
        raise StateError(
            _("campaign '%(campaign)s' is %(state)s; it cannot be paused")
            % {"campaign": campaign_id, "state": _(campaign.state.value)}
        )
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
        details={"state": {"from": _state_before_pause(campaign).value, "to": campaign.state.value}},
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
        raise StateError(
            _("campaign '%(campaign)s' is %(state)s, not paused")
            % {"campaign": campaign_id, "state": _(campaign.state.value)}
        )
    before = campaign.state
    campaign.state = _state_before_pause(campaign)
    campaign.paused_reason = None
    campaign.updated_at = clock.now()
    # Rows left in the chunks that stopped at the pause go back to the tick, which cuts fresh chunks.
    session.execute(
        update(Message)
        .where(Message.campaign_id == campaign.id, Message.status == MessageStatus.QUEUED)
        .values(chunk_id=None)
    )
    log_transition(
        session,
        actor=actor,
        action="resume",
        campaign=campaign,
        at=clock.now(),
        reason=reason,
        state={"from": before.value, "to": campaign.state.value},
    )
    return campaign


def cancel(
    session: Session, *, campaign_id: str, actor: User, clock: Clock, reason: str | None = None
) -> Campaign:
    campaign = get_campaign(session, campaign_id)
    if campaign.state in (CampaignState.CANCELLED, CampaignState.COMPLETED):
        raise StateError(
            _("campaign '%(campaign)s' is already %(state)s")
            % {"campaign": campaign_id, "state": _(campaign.state.value)}
        )
    now = clock.now()
    before = campaign.state
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
    log_transition(
        session,
        actor=actor,
        action="cancel",
        campaign=campaign,
        at=now,
        reason=reason,
        cancelled_messages=cancelled,
        state={"from": before.value, "to": campaign.state.value},
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
