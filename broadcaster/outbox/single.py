"""One urgent message to one address, from an approved campaign: the REST API's
``POST /api/v1/notifications/sms|email`` (GOV.UK Notify's single notification).

The campaign's approved version is "the template": it supplies the template and the provider of the
channel; the caller's ``personalisation`` fills the template's ``message`` root. The message is judged by
the same consent policy as a campaign's messages (``broadcaster.eligibility``), written to the outbox with
no run (``run_id`` NULL, like test sends: a run of its own would complete, and complete a one-off campaign,
after every single message). ``UrgentChunker`` then puts it, with whatever else came in meanwhile, into a
chunk on the provider's urgent queue (``send.<channel>.<provider>.urgent``). Messages the policy defers
(send hours, caps) get their chunk from the tick when they become due.

A web worker renders with ``prepare_single`` and writes in batches: ``judge_singles`` reads (the approved
version again, the policy's lookups for the whole batch), ``insert_singles`` writes the messages and their
audit entries (docs/web.md, "Single messages"); the version's parsed definition and compiled templates are
kept per process, keyed by the content hash, so an approval of a new version is seen by the next batch and
an old snapshot is never reused for it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.audit.append import queue_entry
from broadcaster.campaigns.messages import MESSAGE_KEY, Composer, MessageText
from broadcaster.campaigns.schema import CampaignDefinition
from broadcaster.campaigns.store import definition_of, verify_snapshot
from broadcaster.clock import Clock
from broadcaster.contacts.emails import EmailError, normalize_email
from broadcaster.contacts.phones import PhoneError, is_sms_capable, parse_phone
from broadcaster.db.models import Campaign, CampaignVersion, Chunk, DeliveryEventRow, Message
from broadcaster.db.write_turn import write_turn
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


class Refused(Exception):
    """The request cannot become a message; nothing was written. ``code`` says why, ``field`` which input,
    ``params`` fill the caller's (translated) text."""

    def __init__(self, code: str, field: str, **params: str) -> None:
        super().__init__(f"{code}: {field} {params}")
        self.code = code
        self.field = field
        self.params = params

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled by its own arguments: the writer process of the API sends refusals back to the workers."""
        return (_refused, (self.code, self.field, self.params))


def _refused(code: str, field: str, params: dict[str, str]) -> Refused:
    return Refused(code, field, **params)


# The request's statements, built once (SQLAlchemy then reuses their compiled form): the campaign with its
# approved version's hash, and the message as a Core insert of the table (no ORM object per request).
_APPROVED = (
    select(Campaign.state, Campaign.approved_version_id, CampaignVersion.content_hash)
    .outerjoin(CampaignVersion, CampaignVersion.id == Campaign.approved_version_id)
    .where(Campaign.id == bindparam("campaign_id"))
)
_MESSAGES: Table = Message.__table__  # type: ignore[assignment]
_CHUNKS: Table = Chunk.__table__  # type: ignore[assignment]
_INSERT_CHUNK = _CHUNKS.insert().returning(_CHUNKS.c.id)
# Many rows in one statement, their ids returned in the order of the rows given.
_INSERT_MESSAGES = _MESSAGES.insert().returning(_MESSAGES.c.id, sort_by_parameter_order=True)


# The single-message API's urgent chunks are cut at most this often per web worker process: a message
# waits at most this long for its chunk, and the broker gets a few tasks a second however busy the API is.
URGENT_ROUND_SECONDS = 0.2
# How long a web worker renders with the approved version it last read before reading it again.
CURRENT_SECONDS = 1.0


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
        self._current: dict[str, tuple[float, tuple[_Version, str] | Refused]] = {}

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

    def current(
        self, sessions: sessionmaker[Session], campaign_id: str, *, now: float | None = None
    ) -> tuple[_Version, str]:
        """The campaign's approved version as read at most ``CURRENT_SECONDS`` ago, to render with before
        the write (``judge_singles`` reads it again for the batch); ``Refused`` likewise remembered."""
        moment = time.monotonic() if now is None else now
        known = self._current.get(campaign_id)
        if known is None or moment - known[0] >= CURRENT_SECONDS:
            with sessions() as session:
                try:
                    found: tuple[_Version, str] | Refused = approved_version(session, self, campaign_id)
                except Refused as refused:
                    found = refused
            known = (moment, found)
            with self._lock:
                if len(self._current) > 10_000:  # campaigns are few; this bounds a flood of unknown ids
                    self._current.clear()
                self._current[campaign_id] = known
        found = known[1]
        if isinstance(found, Refused):
            raise Refused(found.code, found.field, **found.params)
        return found


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


@dataclass(frozen=True)
class Prepared:
    """A request checked and rendered with one approved version (``content_hash``), not yet written."""

    request: SingleRequest
    content_hash: str
    version: _Version
    address: str  # normalised
    text: MessageText


def prepare_single(request: SingleRequest, version: _Version, content_hash: str) -> Prepared:
    """Check the address and the personalisation and render the message: no database, so a web worker
    does it on its event loop while the batch before is being written (``Refused`` when it cannot be)."""
    spec = version.definition.channels.get(request.channel)  # type: ignore[call-overload]
    if spec is None:
        raise Refused("no_channel", "campaign_id", campaign=request.campaign_id, channel=request.channel)
    address = normalised_address(request.channel)(request.address)
    for name in sorted(version.needs[request.channel]):
        if name not in request.personalisation:
            raise Refused("missing_personalisation", f"personalisation.{name}", name=name)
    contact = _contact(request, address)
    try:
        text = version.composer.compose(request.channel, contact, with_html=False)
    except RenderError as exc:  # a value the template cannot use (a text where it computes with a number)
        raise Refused("render_failed", "personalisation", reason=exc.message) from None
    return Prepared(request, content_hash, version, address, text)


def _contact(request: SingleRequest, address: str) -> dict[str, Any]:
    return {
        ("phone" if request.channel == Channel.SMS else "email"): address,
        MESSAGE_KEY: dict(request.personalisation),
    }


def approved_version(session: Session, versions: VersionCache, campaign_id: str) -> tuple[_Version, str]:
    """The campaign's approved version as it is now, with its content hash (``Refused`` when there is none
    it may send)."""
    row = session.execute(_APPROVED, {"campaign_id": campaign_id}).first()
    if row is None:
        raise Refused("unknown_campaign", "campaign_id", id=campaign_id)
    state, version_id, content_hash = row
    if state not in SENDABLE or version_id is None:
        raise Refused("not_sendable", "campaign_id", campaign=campaign_id, state=str(state))
    return versions.get(session, version_id, content_hash), content_hash


def write_singles(
    session: Session,
    items: Sequence[Prepared],
    *,
    versions: VersionCache,
    settings: Settings,
    clock: Clock,
) -> list[Created | Refused]:
    """Judge and write many prepared messages in ``session``, one answer per item in order
    (``judge_singles`` then ``insert_singles``)."""
    judged = judge_singles(session, items, versions=versions, settings=settings, clock=clock)
    return insert_singles(session, judged)


@dataclass(frozen=True)
class Judged:
    """A message ready to be inserted: its row's values, judged at ``now``."""

    item: Prepared
    values: dict[str, Any]
    now: datetime


def judge_singles(
    session: Session,
    items: Sequence[Prepared],
    *,
    versions: VersionCache,
    settings: Settings,
    clock: Clock,
) -> list[Judged | Refused]:
    """Read what the messages' rows depend on and build them, one answer per item in order; only reads, so
    the single-message writer does it before its turn at the database's one writer.

    Each campaign's approved version is read again here: an item rendered with a version that is no longer
    the approved one is rendered again with the one that is, and a campaign that stopped being sendable
    refuses its items. The consent policy judges each campaign's items together (an address twice counts
    twice against its cap); the sender judges every message once more before it sends
    (``outbox.screening``), so a withdrawal that commits meanwhile still holds."""
    now = clock.now()
    answers: list[Judged | Refused | None] = [None] * len(items)
    current: dict[str, tuple[_Version, str] | Refused] = {}
    lanes: dict[tuple[str, str], list[tuple[int, Prepared]]] = defaultdict(list)
    for n, item in enumerate(items):
        campaign_id = item.request.campaign_id
        if campaign_id not in current:
            try:
                current[campaign_id] = approved_version(session, versions, campaign_id)
            except Refused as refused:
                current[campaign_id] = refused
        found = current[campaign_id]
        if isinstance(found, Refused):
            answers[n] = found
            continue
        version, content_hash = found
        if content_hash != item.content_hash:  # approved anew since it was rendered
            try:
                item = prepare_single(item.request, version, content_hash)
            except Refused as refused:
                answers[n] = refused
                continue
        lanes[(campaign_id, item.request.channel)].append((n, item))
    for members in lanes.values():
        for n, item, values in _judged(session, members, settings=settings, now=now):
            answers[n] = Judged(item, values, now)
    assert all(answer is not None for answer in answers)
    return answers  # type: ignore[return-value]


def insert_singles(session: Session, judged: Sequence[Judged | Refused]) -> list[Created | Refused]:
    """Insert the judged messages as one multi-row insert, each with its audit entry; refusals pass through."""
    rows = [answer for answer in judged if isinstance(answer, Judged)]
    inserted = session.connection().execute(_INSERT_MESSAGES, [row.values for row in rows]) if rows else None
    ids = iter(inserted.scalars() if inserted is not None else ())
    return [
        answer if isinstance(answer, Refused) else _written(session, answer, int(next(ids)))
        for answer in judged
    ]


def _judged(
    session: Session, members: list[tuple[int, Prepared]], *, settings: Settings, now: datetime
) -> list[tuple[int, Prepared, dict[str, Any]]]:
    """The rows of one campaign's items on one channel, judged together by the consent policy."""
    definition = members[0][1].version.definition
    channel = members[0][1].request.channel
    tz = definition.zone(settings.timezone)
    window = definition.schedule.window if definition.schedule else None
    opens = window.next_open(now, tz) if window is not None and not window.contains(now, tz) else None
    scope = PolicyScope(
        purpose=definition.purpose.value,
        channel=channel,
        campaign_id=definition.id,
        tz=tz,
        settings=settings.consent.policy(),
        erasure_key=settings.security.erasure_key(),
    )
    judged = verdicts(session, scope, [item.address for _n, item in members], at=opens or now)
    rows = []
    for (n, item), verdict in zip(members, judged, strict=True):
        text = item.text
        exclusion = verdict.exclusion or (TOO_LONG if text.too_long else None)
        status = MessageStatus.SUPPRESSED if exclusion else MessageStatus.QUEUED
        cost = None
        if channel == Channel.SMS and text.encoding and text.segments:
            cost = settings.sms.price(carrier=None, encoding=text.encoding) * text.segments
        stored = _contact(item.request, item.address)
        if item.request.reference is not None:
            stored[API_KEY] = {"reference": item.request.reference}
        values = dict(
            idempotency_key=f"{KEY_PREFIX}{uuid.uuid4().hex}",
            kind=MessageKind.CAMPAIGN,
            run_id=None,
            campaign_id=definition.id,
            version_id=item.version.id,
            contact_id=None,
            chunk_id=None,
            channel=channel,
            provider=definition.channels[channel].provider,  # type: ignore[index]
            address=item.address,
            address_key=address_key(channel, item.address),
            purpose=definition.purpose.value,
            status=status,
            hold=False,
            reason=exclusion or verdict.deferral,
            not_before=None if exclusion else (verdict.not_before or opens),
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
        rows.append((n, item, values))
    return rows


def _written(session: Session, judged: Judged, message_id: int) -> Created:
    item, values, now = judged.item, judged.values, judged.now
    status: MessageStatus = values["status"]
    # Queued as ``audit.deliveries`` queues its entries: the details are ids, numbers and statuses, with
    # nothing for ``audit.record`` to mask, and this runs for every message of the API.
    queue_entry(
        session,
        at=now,
        actor=item.request.actor,
        action="campaign.send_single",
        subject_type="message",
        subject_id=str(message_id),
        reason=None,
        details={
            "campaign_id": item.request.campaign_id,
            "version": item.version.number,
            "channel": item.request.channel,
            "status": status.value,
        },
    )
    not_before: datetime | None = values["not_before"]
    due = status == MessageStatus.QUEUED and not_before is None
    return Created(message_id, status, values["reason"], not_before, item.text, due)


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
    a chunk; returns (chunk id, queue) to enqueue after the commit. Core statements only: the single-message
    writer runs this in every batch."""
    connection = session.connection()
    rows = connection.execute(
        select(_MESSAGES.c.id, _MESSAGES.c.channel, _MESSAGES.c.provider).where(
            _MESSAGES.c.id.in_(list(message_ids)),
            _MESSAGES.c.status == MessageStatus.QUEUED,
            _MESSAGES.c.chunk_id.is_(None),
        )
    ).all()
    lanes: dict[tuple[str, str], list[int]] = defaultdict(list)
    for message_id, channel, provider in rows:
        lanes[(channel, provider)].append(message_id)
    created: list[tuple[int, str]] = []
    for (channel, provider), ids in sorted(lanes.items()):
        queue = send_queue(channel, provider, urgent=True)
        chunk_id = connection.execute(
            _INSERT_CHUNK,
            {"run_id": None, "channel": channel, "provider": provider, "queue": queue, "size": len(ids),
             "created_at": now},
        ).scalar_one()  # fmt: skip
        connection.execute(
            update(_MESSAGES)
            .where(_MESSAGES.c.id.in_(ids), _MESSAGES.c.chunk_id.is_(None))
            .values(chunk_id=chunk_id)
        )
        created.append((int(chunk_id), queue))
    return created


class UrgentChunker:
    """Puts the single messages of this process into urgent chunks and enqueues them, in rounds.

    The writer of the single-message API hands over the ids of due messages after its commit; this thread
    takes every id handed in since its last round, at most one round every ``interval`` seconds, cuts one
    chunk per provider in one transaction and enqueues each chunk after the commit. Under load a round
    carries a few hundred messages, so the database and the broker see a few chunks a second instead of
    one per batch of the writer. If the process dies first, the messages are still queued without a chunk
    and the tick's ``cut_chunks`` sends them; a chunk whose task was lost is cut again by the sweeper
    (``outbox.scheduler``). ``background=False`` (tests): ``add`` does a round itself, before it returns.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        enqueue: Callable[[int, str], None],
        *,
        background: bool = True,
        interval: float = URGENT_ROUND_SECONDS,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._enqueue = enqueue
        self._background = background
        self._interval = interval
        self._wake = threading.Condition()
        self._pending: list[int] = []
        self._thread: threading.Thread | None = None

    def add(self, message_ids: Sequence[int]) -> None:
        if not message_ids:
            return
        if not self._background:
            self.round(message_ids)
            return
        with self._wake:
            self._pending.extend(message_ids)
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
        last = 0.0
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                # What comes in until the next round is due goes with this one (no round more often).
                self._wake.wait_for(lambda: False, timeout=max(0.0, last + self._interval - time.monotonic()))
                taken, self._pending = self._pending, []
            last = time.monotonic()
            try:
                self.round(taken)
            except Exception:  # the tick's cut_chunks sends them; this thread must live on
                log.exception("urgent chunking of %s messages failed; the tick will chunk them", len(taken))
