"""Retrying the failed of a run: a new run of the campaign's approved version whose audience is only the
recipients (contact and channel; on push, contact and device) whose message in that run ended failed.

The new run is planned by the ordinary planner, so the consent policy screens every recipient again; its
trigger names the run it retries (``retry:<run id>``), which is how the planner knows to narrow the audience.
Recipients that an earlier retry of the same run reached (or is still reaching) are left out, so retrying
twice never sends twice to someone now delivered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from broadcaster import audit
from broadcaster.campaigns.workflow import approved_version
from broadcaster.clock import Clock
from broadcaster.db.models import CampaignRun, Contact, Message, User
from broadcaster.errors import StateError, UserError
from broadcaster.i18n import gettext as _
from broadcaster.outbox.sending import open_run, sendable_campaign
from broadcaster.vocabulary import MessageKind, MessageStatus, RunStatus
from channels.base import Channel

RETRY_ACTION = "campaign.retry_failed"
TRIGGER_PREFIX = "retry:"

# The statuses a message ends in when it did not reach its recipient (the provider refused it, or our side
# gave up, or it expired at the provider: a bounce or an undelivered receipt lands in one of these).
FAILED = (
    MessageStatus.PERMANENT_FAILURE,
    MessageStatus.TECHNICAL_FAILURE,
    MessageStatus.TEMPORARY_FAILURE,
)
# A retry's message in these statuses has reached, or may still reach, its recipient: not retried again.
REACHING = (
    MessageStatus.QUEUED,
    MessageStatus.SENDING,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.UNKNOWN,
)


def retry_trigger(source_run_id: int) -> str:
    return f"{TRIGGER_PREFIX}{source_run_id}"  # fits campaign_runs.trigger (16) up to ten-digit run ids


def retried_run(trigger: str) -> int | None:
    """The run a retry run retries, from its trigger; None for a scheduled or manual run."""
    if not trigger.startswith(TRIGGER_PREFIX):
        return None
    value = trigger[len(TRIGGER_PREFIX) :]
    return int(value) if value.isdigit() else None


def _still_failed(source_run_id: int) -> ColumnElement[bool]:
    """A message of the source run that failed and that no retry of that run has reached since."""
    later = aliased(Message)
    retry_runs = select(CampaignRun.id).where(CampaignRun.trigger == retry_trigger(source_run_id))
    reached = exists().where(
        later.run_id.in_(retry_runs),
        later.contact_id == Message.contact_id,
        later.channel == Message.channel,
        # A push recipient is one device of the contact: another device reached says nothing of this one.
        or_(Message.channel != Channel.PUSH, later.address == Message.address),
        later.status.in_(REACHING),
    )
    return and_(
        Message.run_id == source_run_id,
        Message.kind == MessageKind.CAMPAIGN,
        Message.contact_id.is_not(None),
        Message.status.in_(FAILED),
        ~reached,
    )


def failed_contacts(source_run_id: int) -> ColumnElement[bool]:
    """The planner's audience narrowing for a retry run: contacts with a message still to retry."""
    return Contact.id.in_(select(Message.contact_id).where(_still_failed(source_run_id)))


def retry_key(contact_id: int, channel: str, address: str | None) -> tuple[int, str, str | None]:
    """What a retry narrows to: the contact on a channel, and on push the one device (token) that failed, so
    the contact's other devices, which got the message, do not get it twice."""
    return (contact_id, channel, address if channel == Channel.PUSH else None)


def failed_pairs(
    session: Session, source_run_id: int, contact_ids: Sequence[int]
) -> set[tuple[int, str, str | None]]:
    """``retry_key``s still to retry among ``contact_ids`` (one page of the planner)."""
    query = select(Message.contact_id, Message.channel, Message.address).where(
        _still_failed(source_run_id), Message.contact_id.in_(contact_ids)
    )
    return {
        retry_key(contact, channel, address)
        for contact, channel, address in session.execute(query)
        if contact is not None
    }


@dataclass(frozen=True)
class RetryStart:
    run_id: int
    source_run_id: int
    failed: int  # messages still to retry when the run started (the screen may still exclude some)


def start_retry_run(
    session: Session, *, campaign_id: str, source_run_id: int | None, actor: User, clock: Clock
) -> RetryStart:
    """Open a retry run of ``source_run_id`` (default: the campaign's latest run); the planner does the rest.

    The same states as ``send`` allow it, from the currently approved version; a run with nothing left to
    retry is refused and changes nothing."""
    campaign = sendable_campaign(session, campaign_id)
    version = approved_version(session, campaign)
    if source_run_id is None:
        source_run_id = session.scalar(
            select(func.max(CampaignRun.id)).where(CampaignRun.campaign_id == campaign_id)
        )
        if source_run_id is None:
            raise StateError(
                _("campaign '%(campaign)s' has no run to send again yet") % {"campaign": campaign_id}
            )
    # Locked: two retries of one run at once would both find the same failures before either is planned.
    source = session.scalar(select(CampaignRun).where(CampaignRun.id == source_run_id).with_for_update())
    if source is None or source.campaign_id != campaign_id:
        raise UserError(
            _("--run %(run)s: not a run of campaign '%(campaign)s'")
            % {"run": source_run_id, "campaign": campaign_id}
        )
    planning = session.scalar(
        select(CampaignRun.id).where(
            CampaignRun.trigger == retry_trigger(source.id), CampaignRun.status == RunStatus.PLANNING
        )
    )
    if planning is not None:
        # Its messages are not written yet, so the failures it will send to still look unsent.
        raise StateError(
            _("retry run %(retry)s of run %(run)s is being planned; wait until it is done, then try again")
            % {"retry": planning, "run": source.id}
        )
    failed = int(
        session.scalar(select(func.count()).select_from(Message).where(_still_failed(source.id))) or 0
    )
    if not failed:
        raise StateError(
            _("run %(run)s of campaign '%(campaign)s' has no failed message left to send again")
            % {"run": source.id, "campaign": campaign_id}
        )
    now = clock.now()
    run = open_run(session, campaign, version, trigger=retry_trigger(source.id), now=now)
    audit.record(
        session,
        actor=actor.login,
        action=RETRY_ACTION,
        subject_type="campaign",
        subject_id=campaign_id,
        at=now,
        details={
            "run_id": run.id,
            "retries_run": source.id,
            "failed": failed,
            "version": version.number,
            "content_hash": version.content_hash,
        },
    )
    return RetryStart(run_id=run.id, source_run_id=source.id, failed=failed)
