"""Starting sends by hand: a manual run of an approved campaign, and test sends before approval."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import distinct, func, select, update
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.audit.deliveries import record_results
from broadcaster.campaigns.messages import Composer, push_context
from broadcaster.campaigns.store import definition_of, get_campaign, get_version, verify_snapshot
from broadcaster.campaigns.workflow import approved_version
from broadcaster.clock import Clock
from broadcaster.contacts.emails import EmailError, normalize_email
from broadcaster.contacts.phones import PhoneError, is_sms_capable, parse_phone
from broadcaster.context import AppContext
from broadcaster.db.models import Campaign, CampaignRun, CampaignVersion, Chunk, Message, User
from broadcaster.devices import TOKEN
from broadcaster.errors import StateError, UserError
from broadcaster.i18n import gettext as _
from broadcaster.i18n import translate
from broadcaster.outbox.chunks import cut_chunks
from broadcaster.rendering import sample_contact
from broadcaster.settings import Settings
from broadcaster.vocabulary import CampaignState, MessageKind, MessageStatus, RunStatus
from channels.base import Channel
from channels.errors import ChannelError, ConfigurationError
from consent.suppression import address_key


def start_manual_run(
    session: Session, *, campaign_id: str, actor: User, clock: Clock, again: bool = False
) -> int:
    """One run now, from the approved snapshot; the plan task does the rest.

    A campaign without a schedule section goes out once: after its run went out (or while it is going
    out), sending it again takes ``again``, and the refusal says how many people already received it."""
    campaign = sendable_campaign(session, campaign_id)
    version = approved_version(session, campaign)
    received = received_count(session, campaign_id)
    one_off_sent = definition_of(version).schedule is None and bool(
        received or _went_out(session, campaign_id)
    )
    if not again and (campaign.state == CampaignState.COMPLETED or one_off_sent):
        raise StateError(
            _(
                "campaign '%(campaign)s' was already sent (%(state)s): %(received)s people received it. "
                "`broadcaster send %(campaign)s --again` sends it to everyone again."
            )
            % {"campaign": campaign_id, "state": _(campaign.state.value), "received": received}
        )
    now = clock.now()
    run = open_run(session, campaign, version, trigger="manual", now=now)
    details: dict[str, object] = {
        "run_id": run.id,
        "version": version.number,
        "content_hash": version.content_hash,
    }
    if again:
        details.update(again=True, already_received=received)
    audit.record(
        session,
        actor=actor.login,
        action="campaign.send",
        subject_type="campaign",
        subject_id=campaign_id,
        at=now,
        details=details,
    )
    return run.id


def sendable_campaign(session: Session, campaign_id: str) -> Campaign:
    """The campaign, when its state lets a new run start (approved, scheduled, or completed and sent again)."""
    campaign = get_campaign(session, campaign_id)
    if campaign.state not in (CampaignState.APPROVED, CampaignState.SCHEDULED, CampaignState.COMPLETED):
        raise StateError(
            _("campaign '%(campaign)s' is %(state)s; only an approved or scheduled campaign can be sent")
            % {"campaign": campaign_id, "state": _(campaign.state.value)}
        )
    return campaign


def open_run(
    session: Session, campaign: Campaign, version: CampaignVersion, *, trigger: str, now: datetime
) -> CampaignRun:
    """A new run of ``version`` waiting for the planner; a completed campaign becomes approved again (a run
    going out can be paused or cancelled)."""
    if campaign.state == CampaignState.COMPLETED:
        campaign.state = CampaignState.APPROVED
        campaign.updated_at = now
    run = CampaignRun(
        campaign_id=campaign.id,
        version_id=version.id,
        occurrence_at=now,
        trigger=trigger,
        status=RunStatus.PLANNING,
        planned_messages=0,
        plan_checkpoint=0,
        created_at=now,
    )
    session.add(run)
    session.flush()
    return run


def received_count(session: Session, campaign_id: str) -> int:
    """People (contacts) the campaign's runs reached: a message accepted by the provider or delivered."""
    return int(
        session.scalar(
            select(func.count(distinct(Message.contact_id))).where(
                Message.campaign_id == campaign_id,
                Message.kind == MessageKind.CAMPAIGN,
                Message.status.in_([MessageStatus.SENT, MessageStatus.DELIVERED]),
            )
        )
        or 0
    )


def _went_out(session: Session, campaign_id: str) -> bool:
    """A run of the campaign is being planned, sending, or completed (a cancelled one did not go out)."""
    found = session.scalar(
        select(CampaignRun.id)
        .where(
            CampaignRun.campaign_id == campaign_id,
            CampaignRun.status.in_(
                [RunStatus.PLANNING, RunStatus.SENDING, RunStatus.COMPLETED, RunStatus.COMPLETED_WITH_HELD]
            ),
        )
        .limit(1)
    )
    return found is not None


# A test send to a device: ``--to push:TOKEN`` (a token is neither a phone number nor an e-mail address).
PUSH_TEST_PREFIX = "push:"


def channel_for(address: str) -> tuple[str, str]:
    """(channel, normalised address) for a test recipient typed by an officer."""
    if address.startswith(PUSH_TEST_PREFIX):
        token = address[len(PUSH_TEST_PREFIX) :].strip()
        if not TOKEN.fullmatch(token):
            raise UserError(
                _(
                    "--to '%(address)s': not a device token (push:TOKEN, 16 to 320 letters, digits, ':', '.', '-' "
                    "or '_')"
                )
                % {"address": address}
            )
        return Channel.PUSH, token
    if "@" in address:
        try:
            return Channel.EMAIL, normalize_email(address)
        except EmailError as exc:
            raise UserError(f"--to '{address}': {translate(exc.reason)}") from None
    try:
        phone = parse_phone(address)
    except PhoneError as exc:
        raise UserError(f"--to '{address}': {translate(exc.reason)}") from None
    if not is_sms_capable(phone):
        raise UserError(
            _("--to '%(address)s': not a mobile number, cannot receive SMS") % {"address": address}
        )
    return Channel.SMS, phone.e164


@dataclass(frozen=True)
class TestSend:
    """Test messages written to the outbox, and the chunks that carry them."""

    message_ids: list[int]
    chunks: list[tuple[int, str]]


@dataclass(frozen=True)
class ProviderFailure:
    """Why a provider did not take a test send: its error, and whether the settings (not the network) are wrong."""

    provider: str
    reason: str
    configuration: bool = False


def create_test_messages(
    session: Session,
    *,
    campaign_id: str,
    to: list[str],
    actor: User,
    settings: Settings,
    clock: Clock,
    version_number: int | None = None,
) -> TestSend:
    """Queue one test message per address (sample contact data, ``[TEST]`` subject), cut into chunks."""
    version = get_version(session, campaign_id, version_number)
    verify_snapshot(version)
    definition = definition_of(version)
    composer = Composer(definition=definition, templates=dict(version.templates), settings=settings)
    now = clock.now()
    sample = sample_contact()
    targets = [channel_for(address) for address in to]
    for channel, address in targets:
        if channel not in definition.channels:
            raise UserError(
                _("campaign '%(campaign)s' has no %(channel)s channel; --to %(address)s cannot be used")
                % {"campaign": campaign_id, "channel": channel, "address": address}
            )
    created: list[Message] = []
    for channel, address in targets:
        spec = definition.channels[channel]  # type: ignore[index]
        contact = dict(sample)
        if channel != Channel.PUSH:  # a device token is no contact field: the sample's own stay
            contact["phone" if channel == Channel.SMS else "email"] = address
        text = composer.compose(channel, contact, with_html=False)
        message = Message(
            idempotency_key=f"test:{uuid.uuid4().hex}",
            kind=MessageKind.TEST,
            campaign_id=campaign_id,
            version_id=version.id,
            channel=channel,
            provider=spec.provider,
            address=address,
            address_key=address_key(channel, address),
            status=MessageStatus.QUEUED,
            subject=f"[TEST] {text.subject}" if text.subject else None,
            body=text.body,
            context=contact if channel == Channel.EMAIL else push_context(text.link),
            encoding=text.encoding,
            segments=text.segments,
            created_at=now,
        )
        session.add(message)
        created.append(message)
    session.flush()
    audit.record(
        session,
        actor=actor.login,
        action="campaign.test_send",
        subject_type="campaign",
        subject_id=campaign_id,
        at=now,
        details={"version": version.number, "to": [a for _c, a in targets]},
    )
    ids = [m.id for m in created]
    return TestSend(message_ids=ids, chunks=cut_chunks(session, settings=settings, clock=clock, only_ids=ids))


def send_test_messages(context: AppContext, test: TestSend) -> list[ProviderFailure]:
    """Attempt a test send now, in this process: an officer waits for the answer.

    A test send is attempted now or fails now. What a provider did not take (unreachable, refused the
    account, asked to retry later) ends as ``technical_failure`` with the reason, so no later run or tick
    sends it unasked. Returns the providers that failed, one entry each.
    """
    from broadcaster.outbox.dispatch import dispatcher_for  # the dispatcher's imports are heavy

    failures: dict[str, ProviderFailure] = {}
    dispatcher = dispatcher_for(context)
    try:
        for chunk_id, _queue in test.chunks:
            with context.readers() as session:
                provider = session.scalars(select(Chunk.provider).where(Chunk.id == chunk_id)).one()
            try:
                stopped = dispatcher.run_chunk(chunk_id).stopped
            except ChannelError as exc:  # the provider could not be reached at all (an SMPP bind failed)
                failures[provider] = ProviderFailure(provider, str(exc), isinstance(exc, ConfigurationError))
                continue
            if stopped is not None:
                failures[provider] = ProviderFailure(provider, stopped, stopped.startswith("configuration"))
    finally:
        dispatcher.close()
        with context.sessions.begin() as session:
            unsent = fail_unsent_test_messages(
                session,
                message_ids=test.message_ids,
                reasons={name: f.reason for name, f in failures.items()},
                clock=context.clock,
            )
    for provider, reason in unsent.items():
        failures.setdefault(provider, ProviderFailure(provider, reason))
    return list(failures.values())


def fail_unsent_test_messages(
    session: Session, *, message_ids: Sequence[int], reasons: dict[str, str], clock: Clock
) -> dict[str, str]:
    """Test messages still queued after their attempt fail now, with the provider's reason (``reasons``) or
    their own (a deferral's). Returns provider -> reason for the providers that had such messages."""
    now = clock.now()
    rows = session.execute(
        select(Message.id, Message.provider, Message.reason).where(
            Message.id.in_(message_ids),
            Message.kind == MessageKind.TEST,
            Message.status == MessageStatus.QUEUED,
        )
    ).all()
    failed: dict[str, str] = {}
    moved: dict[str, list[list[object]]] = {}
    for message_id, provider, own_reason in rows:
        if own_reason and own_reason.startswith("retry "):  # a deferral's "retry N: <error>": no retry comes
            own_reason = own_reason.split(": ", 1)[-1]
        reason = reasons.get(provider) or own_reason or "not sent"
        failed.setdefault(provider, reason)
        session.execute(
            update(Message)
            .where(Message.id == message_id, Message.status == MessageStatus.QUEUED)
            .values(
                status=MessageStatus.TECHNICAL_FAILURE,
                reason=f"test send not completed: {reason}",
                not_before=None,
                final_at=now,
            )
        )
        moved.setdefault(provider, []).append([message_id, MessageStatus.TECHNICAL_FAILURE.value, "not_sent"])
    for provider, messages in sorted(moved.items()):
        record_results(
            session,
            actor="test_send",
            provider=provider,
            subject_type="provider",
            subject_id=provider,
            messages=messages,
            at=now,
        )
    return failed
