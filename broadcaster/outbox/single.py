"""One urgent message to one address, from an approved campaign: the REST API's
``POST /api/v1/notifications/sms|email`` (GOV.UK Notify's single notification).

The campaign's approved version is "the template": it supplies the template and the provider of the
channel; the caller's ``personalisation`` fills the template's ``message`` root. The message is judged by
the same consent policy as a campaign's messages (``broadcaster.eligibility``), written to the outbox with
no run (``run_id`` NULL, like test sends: a run of its own would complete, and complete a one-off campaign,
after every single message). ``UrgentChunker`` then puts it, with whatever else came in meanwhile, into a
chunk on the provider's urgent queue (``send.<channel>.<provider>.urgent``). Messages the policy defers
(send hours, caps) get their chunk from the tick when they become due.

The request reads one row (the campaign joined to its approved version's hash) plus the policy's lookups and
writes two (the message, an audit entry) in one transaction; the version's parsed definition and compiled
templates are kept per process, keyed by the content hash, so an approval of a new version is seen by the
next request and an old snapshot is never reused for it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from broadcaster import audit
from broadcaster.campaigns.messages import MESSAGE_KEY, Composer, MessageText
from broadcaster.campaigns.schema import CampaignDefinition
from broadcaster.campaigns.store import definition_of, verify_snapshot
from broadcaster.clock import Clock
from broadcaster.contacts.emails import EmailError, normalize_email
from broadcaster.contacts.phones import PhoneError, is_sms_capable, parse_phone
from broadcaster.db.models import Campaign, CampaignVersion, Chunk, DeliveryEventRow, Message
from broadcaster.eligibility import PolicyScope, verdicts
from broadcaster.outbox.queues import send_queue
from broadcaster.rendering import RenderError, message_fields
from broadcaster.settings import Settings
from broadcaster.vocabulary import CampaignState, MessageKind, MessageStatus
from channels.base import Channel
from consent.suppression import address_key

log = logging.getLogger(__name__)

# The prefix of a single message's idempotency key: it tells the messages created through the API apart.
KEY_PREFIX = "api:"
# The key under ``Message.context`` keeping what the caller sent besides the personalisation.
API_KEY = "api"
SENDABLE = (CampaignState.APPROVED, CampaignState.SCHEDULED, CampaignState.COMPLETED)
# The exclusion an SMS too long for its channel's max_segments is recorded with (as the planner does).
TOO_LONG = "too_long"


# SQLite has one writer, and a connection waiting for it sleeps in growing steps (up to 100 ms) between
# tries: the threads of one web process take their turns on this lock instead, first come first served, so
# under load a request waits for the ones before it rather than for a lucky wake-up.
# PostgreSQL has row locks and many writers: no turns there.
_WRITE_TURN = threading.Lock()


def write_turn(sessions: sessionmaker[Session]) -> AbstractContextManager[object]:
    """This process's turn at the database's one writer (SQLite), or nothing to wait for (PostgreSQL)."""
    bind = sessions.kw.get("bind")
    if bind is not None and bind.dialect.name == "sqlite":
        return _WRITE_TURN
    return nullcontext()


class Refused(Exception):
    """The request cannot become a message; nothing was written. ``code`` says why, ``field`` which input,
    ``params`` fill the caller's (translated) text."""

    def __init__(self, code: str, field: str, **params: str) -> None:
        super().__init__(f"{code}: {field} {params}")
        self.code = code
        self.field = field
        self.params = params


# The request's statements, built once (SQLAlchemy then reuses their compiled form): the campaign with its
# approved version's hash, and the message as a Core insert of the table (no ORM object per request).
_APPROVED = (
    select(Campaign.state, Campaign.approved_version_id, CampaignVersion.content_hash)
    .outerjoin(CampaignVersion, CampaignVersion.id == Campaign.approved_version_id)
    .where(Campaign.id == bindparam("campaign_id"))
)
_MESSAGES: Table = Message.__table__  # type: ignore[assignment]
_INSERT_MESSAGE = _MESSAGES.insert().returning(_MESSAGES.c.id)


@dataclass(frozen=True)
class _Version:
    """What a single message needs of an approved version, built once per process and content hash."""

    id: int
    number: int
    definition: CampaignDefinition
    composer: Composer
    needs: Mapping[str, frozenset[str]]  # channel -> the ``message.NAME`` its template uses


class VersionCache:
    """Approved versions by content hash (a snapshot never changes under its hash)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._versions: dict[str, _Version] = {}

    def get(self, session: Session, version_id: int, content_hash: str) -> _Version:
        found = self._versions.get(content_hash)
        if found is not None and found.id == version_id:
            return found
        version = session.get(CampaignVersion, version_id)
        assert version is not None  # the foreign key of approved_version_id
        verify_snapshot(version)
        definition = definition_of(version)
        templates = dict(version.templates)
        built = _Version(
            id=version.id,
            number=version.number,
            definition=definition,
            composer=Composer(definition=definition, templates=templates, settings=self.settings),
            needs={
                channel: message_fields(templates, spec.template, channel)
                for channel, spec in definition.channels.items()
            },
        )
        with self._lock:
            self._versions[content_hash] = built
        return built


@dataclass(frozen=True)
class SingleRequest:
    campaign_id: str
    channel: str  # sms | email
    address: str  # as the caller wrote it
    personalisation: Mapping[str, Any]
    reference: str | None
    actor: str  # the acting login (an API key's ``api:<prefix>``)


@dataclass(frozen=True)
class Created:
    message_id: int
    status: MessageStatus
    reason: str | None
    not_before: datetime | None
    text: MessageText
    due: bool  # to be sent now: hand its id to the ``UrgentChunker`` after the commit


def normalised_address(channel: str) -> Any:
    """The address check of a channel: the contacts module's, as an import applies it."""
    return _phone if channel == Channel.SMS else _email


def _phone(raw: str) -> str:
    try:
        phone = parse_phone(raw)
    except PhoneError as exc:
        raise Refused("invalid_address", "phone_number", reason=str(exc)) from None
    if not is_sms_capable(phone):
        raise Refused("not_mobile", "phone_number")
    return phone.e164


def _email(raw: str) -> str:
    try:
        return normalize_email(raw)
    except EmailError as exc:
        raise Refused("invalid_address", "email_address", reason=str(exc)) from None


def create_single_message(
    session: Session,
    request: SingleRequest,
    *,
    versions: VersionCache,
    settings: Settings,
    clock: Clock,
) -> Created:
    """Validate, render, judge and write one message in ``session``; ``Created.due``: hand it to the chunker."""
    row = session.execute(_APPROVED, {"campaign_id": request.campaign_id}).first()
    if row is None:
        raise Refused("unknown_campaign", "campaign_id", id=request.campaign_id)
    state, version_id, content_hash = row
    if state not in SENDABLE or version_id is None:
        raise Refused("not_sendable", "campaign_id", campaign=request.campaign_id, state=str(state))
    version = versions.get(session, version_id, content_hash)
    definition = version.definition
    spec = definition.channels.get(request.channel)  # type: ignore[call-overload]
    if spec is None:
        raise Refused("no_channel", "campaign_id", campaign=request.campaign_id, channel=request.channel)
    address = normalised_address(request.channel)(request.address)
    for name in sorted(version.needs[request.channel]):
        if name not in request.personalisation:
            raise Refused("missing_personalisation", f"personalisation.{name}", name=name)
    contact: dict[str, Any] = {
        ("phone" if request.channel == Channel.SMS else "email"): address,
        MESSAGE_KEY: dict(request.personalisation),
    }
    try:
        text = version.composer.compose(request.channel, contact, with_html=False)
    except RenderError as exc:  # a value the template cannot use (a text where it computes with a number)
        raise Refused("render_failed", "personalisation", reason=exc.message) from None

    now = clock.now()
    tz = definition.zone(settings.timezone)
    window = definition.schedule.window if definition.schedule else None
    opens = window.next_open(now, tz) if window is not None and not window.contains(now, tz) else None
    scope = PolicyScope(
        purpose=definition.purpose.value,
        channel=request.channel,
        campaign_id=definition.id,
        tz=tz,
        settings=settings.consent.policy(),
        erasure_key=settings.security.erasure_key(),
    )
    [verdict] = verdicts(session, scope, [address], at=opens or now)
    exclusion = verdict.exclusion or (TOO_LONG if text.too_long else None)
    status = MessageStatus.SUPPRESSED if exclusion else MessageStatus.QUEUED
    not_before = None if exclusion else (verdict.not_before or opens)
    cost = None
    if request.channel == Channel.SMS and text.encoding and text.segments:
        cost = settings.sms.price(carrier=None, encoding=text.encoding) * text.segments
    stored: dict[str, Any] = dict(contact)
    if request.reference is not None:
        stored[API_KEY] = {"reference": request.reference}
    values = dict(
        idempotency_key=f"{KEY_PREFIX}{uuid.uuid4().hex}",
        kind=MessageKind.CAMPAIGN,
        run_id=None,
        campaign_id=definition.id,
        version_id=version.id,
        contact_id=None,
        chunk_id=None,
        channel=request.channel,
        provider=spec.provider,
        address=address,
        address_key=address_key(request.channel, address),
        purpose=definition.purpose.value,
        status=status,
        hold=False,
        reason=exclusion or verdict.deferral,
        not_before=not_before,
        attempts=0,
        subject=text.subject,
        body=text.body,
        context=stored,
        encoding=text.encoding,
        segments=text.segments,
        cost=cost,
        parts_total=0,
        parts_delivered=0,
        created_at=now,
        final_at=now if exclusion else None,
    )
    message_id = int(session.connection().execute(_INSERT_MESSAGE, values).scalar_one())
    audit.record(
        session,
        actor=request.actor,
        action="campaign.send_single",
        subject_type="message",
        subject_id=message_id,
        at=now,
        details={
            "campaign_id": definition.id,
            "version": version.number,
            "channel": request.channel,
            "status": status.value,
        },
    )
    due = status == MessageStatus.QUEUED and not_before is None
    return Created(message_id, status, exclusion or verdict.deferral, not_before, text, due)


@dataclass(frozen=True)
class SingleView:
    message: Message
    events: list[DeliveryEventRow]


def find_single(session: Session, message_id: int) -> SingleView | None:
    """A message created through the API (any other message: None), with its delivery events in order."""
    message = session.get(Message, message_id)
    if message is None or not message.idempotency_key.startswith(KEY_PREFIX):
        return None
    events = session.scalars(
        select(DeliveryEventRow)
        .where(DeliveryEventRow.message_id == message_id)
        .order_by(DeliveryEventRow.id)
    )
    return SingleView(message, list(events))


def reference_of(message: Message) -> str | None:
    api = (message.context or {}).get(API_KEY)
    return api.get("reference") if isinstance(api, dict) else None


def chunk_urgent(session: Session, message_ids: Sequence[int], *, now: datetime) -> list[tuple[int, str]]:
    """One chunk per (channel, provider) on the urgent queue for the given messages still queued without
    a chunk; returns (chunk id, queue) to enqueue after the commit."""
    rows = session.execute(
        select(Message.id, Message.channel, Message.provider).where(
            Message.id.in_(list(message_ids)),
            Message.status == MessageStatus.QUEUED,
            Message.chunk_id.is_(None),
        )
    ).all()
    lanes: dict[tuple[str, str], list[int]] = defaultdict(list)
    for message_id, channel, provider in rows:
        lanes[(channel, provider)].append(message_id)
    created: list[tuple[int, str]] = []
    for (channel, provider), ids in sorted(lanes.items()):
        queue = send_queue(channel, provider, urgent=True)
        chunk = Chunk(
            run_id=None, channel=channel, provider=provider, queue=queue, size=len(ids), created_at=now
        )
        session.add(chunk)
        session.flush()
        session.execute(
            update(Message).where(Message.id.in_(ids), Message.chunk_id.is_(None)).values(chunk_id=chunk.id)
        )
        created.append((chunk.id, queue))
    return created


class UrgentChunker:
    """Puts the single messages of this process into urgent chunks and enqueues them, in batches.

    A request only writes its message; this thread wakes at once, takes every id handed in since its last
    round, cuts one chunk per provider in one transaction and enqueues each chunk once: under load a round
    carries many messages, so the broker sees a few tasks a second instead of one per request. If the
    process dies first, the messages are still queued without a chunk, and the tick's ``cut_chunks`` sends
    them. ``background=False`` (tests): ``add`` does a round itself, before it returns.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        enqueue: Callable[[int, str], None],
        *,
        background: bool = True,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._enqueue = enqueue
        self._background = background
        self._wake = threading.Condition()
        self._pending: list[int] = []
        self._thread: threading.Thread | None = None

    def add(self, message_id: int) -> None:
        if not self._background:
            self.round([message_id])
            return
        with self._wake:
            self._pending.append(message_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="urgent-chunker", daemon=True)
                self._thread.start()
            self._wake.notify()

    def round(self, message_ids: Sequence[int]) -> list[tuple[int, str]]:
        with write_turn(self._sessions), self._sessions.begin() as session:
            chunks = chunk_urgent(session, message_ids, now=self._clock.now())
        for chunk_id, queue in chunks:  # after the commit: a worker must find the rows it is given
            self._enqueue(chunk_id, queue)
        return chunks

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                taken, self._pending = self._pending, []
            try:
                self.round(taken)
            except Exception:  # the tick's cut_chunks sends them; this thread must live on
                log.exception("urgent chunking of %s messages failed; the tick will chunk them", len(taken))
