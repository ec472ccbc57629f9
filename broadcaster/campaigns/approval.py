"""Submit, approve, reject: the review of a campaign version, bound to the content hash the approver saw.

Approval binds to the content hash the approver saw (a prefix of it is required); the submitter cannot
approve; above the recipients threshold of the policies (``broadcaster policy``) a version needs a second,
different approver. When a newer version's approval completes, the older versions' runs that still have
messages waiting stop (or, when the approver says so, finish: ``older_runs``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from broadcaster import policies
from broadcaster.campaigns.older_runs import settle_older_runs
from broadcaster.campaigns.preview import preview_version
from broadcaster.campaigns.store import (
    definition_of,
    get_campaign,
    get_version,
    latest_version,
    verify_snapshot,
)
from broadcaster.campaigns.transition_log import log_transition
from broadcaster.clock import Clock
from broadcaster.db.models import Approval, Campaign, CampaignVersion, User
from broadcaster.errors import StateError, UserError
from broadcaster.i18n import gettext as _
from broadcaster.settings import Settings
from broadcaster.vocabulary import CampaignState, Decision, VersionStatus

__all__ = ["HASH_PREFIX_MIN", "approve", "reject", "set_next_occurrence", "submit"]

HASH_PREFIX_MIN = 8


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
            _(
                "campaign '%(campaign)s' version %(number)s is %(status)s; only a draft can be submitted "
                "(load a changed file to make a new draft)"
            )
            % {"campaign": campaign_id, "number": version.number, "status": _(version.status.value)}
        )
    verify_snapshot(version)
    size = preview_version(session, version, settings, now=clock.now(), samples=0).reached_contacts
    version.audience_size = size
    version.required_approvals = 2 if size > policies.second_approver_threshold(session) else 1
    version.status = VersionStatus.SUBMITTED
    version.submitted_by = actor.login
    version.submitted_at = clock.now()
    log_transition(
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
            _(
                "--hash needs at least %(min)s characters of the content hash of the version you reviewed; "
                "`broadcaster campaigns preview %(campaign)s` and `broadcaster status %(campaign)s` show it"
            )
            % {"min": HASH_PREFIX_MIN, "campaign": campaign_id}
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
            _(
                "campaign '%(campaign)s' version %(number)s is stale: version %(latest)s was loaded after it. "
                "Preview version %(latest)s and decide on that one."
            )
            % {"campaign": campaign_id, "number": version.number, "latest": latest.number}
        )
    if not version.content_hash.startswith(content_hash.lower()):
        raise StateError(
            _(
                "campaign '%(campaign)s' version %(number)s has content hash %(hash)s…, not %(given)s…: what you "
                "reviewed is stale. Run `broadcaster campaigns preview %(campaign)s` again."
            )
            % {
                "campaign": campaign_id,
                "number": version.number,
                "hash": version.content_hash[:12],
                "given": content_hash,
            }
        )
    if version.status != VersionStatus.SUBMITTED:
        raise StateError(
            _(
                "campaign '%(campaign)s' version %(number)s is %(status)s, not submitted; an editor submits it "
                "first (`broadcaster campaigns submit`)"
            )
            % {"campaign": campaign_id, "number": version.number, "status": _(version.status.value)}
        )
    return version


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
            _("you submitted version %(number)s of '%(campaign)s'; another user must approve it")
            % {"number": version.number, "campaign": campaign_id}
        )
    if any(a.user_login == actor.login for a in version.approvals):
        raise StateError(
            _(
                "you have already approved version %(number)s of '%(campaign)s'; it needs a different second "
                "approver"
            )
            % {"number": version.number, "campaign": campaign_id}
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
    before = campaign.state
    if complete:
        version.status = VersionStatus.APPROVED
        previous = campaign.approved_version_id
        campaign.approved_version_id = version.id
        if campaign.state in (CampaignState.DRAFT, CampaignState.COMPLETED):
            campaign.state = CampaignState.APPROVED
        elif campaign.state == CampaignState.SCHEDULED:
            set_next_occurrence(campaign, version, now)
        if previous is not None and previous != version.id:
            old = session.get(CampaignVersion, previous)
            if old is not None:
                old.status = VersionStatus.SUPERSEDED
        campaign.updated_at = now
        settle_older_runs(
            session, campaign=campaign, version=version, actor=actor, now=now, keep_pending=keep_pending
        )
    log_transition(
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
        state={"from": before.value, "to": campaign.state.value},
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
        raise UserError(_("a rejection needs a reason (--reason) so the editor knows what to change"))
    campaign = get_campaign(session, campaign_id)
    version = _version_for_decision(session, campaign_id, version_number, content_hash)
    if actor.login == version.submitted_by:
        raise StateError(_("you cannot decide on a version you submitted; load a changed file instead"))
    if any(a.user_login == actor.login for a in version.approvals):
        # One decision per person and version (the approvals table's unique key): the first approver of a
        # two-approver version cannot also reject it.
        raise StateError(
            _(
                "you have already approved version %(number)s of '%(campaign)s'; another approver may reject "
                "it, or the editor loads a changed file"
            )
            % {"number": version.number, "campaign": campaign_id}
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
    log_transition(
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


def set_next_occurrence(campaign: Campaign, version: CampaignVersion, now: datetime) -> None:
    schedule = definition_of(version).schedule
    campaign.next_occurrence_at = schedule.next_occurrence(now) if schedule is not None else None
