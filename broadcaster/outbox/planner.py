"""Plan a run: audience in keyset pages → screen (the consent policy, de-duplicate) → render from the
approved snapshot → bulk-insert messages, each due one in its chunk (``plan_chunks``) → once the run is planned,
enqueue one dispatch task per chunk.

Planning is resumable: each page commits with the run's checkpoint (last contact id), and the unique
idempotency key (run, channel, address; on push run, contact and device) makes a replayed page insert nothing
twice. A push channel gives one message per registered device of a contact (docs/push.md).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from datetime import datetime
from typing import Any, cast

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.campaigns.audience import Exclusion, Screen, iter_audience_rows, too_big_reason
from broadcaster.campaigns.messages import Composer, MessageText, contact_view, push_context
from broadcaster.campaigns.store import definition_of, verify_snapshot
from broadcaster.clock import Clock
from broadcaster.db.bulk import insert_ignoring_conflicts, where_in
from broadcaster.db.engine import readers_of
from broadcaster.db.models import Campaign, CampaignRun, CampaignVersion, Contact, Message
from broadcaster.db.rows import required
from broadcaster.gc_pace import fewer_collections
from broadcaster.outbox.chunks import UrgencyCache, enqueue_chunks
from broadcaster.outbox.fallbacks import link_fallbacks
from broadcaster.outbox.page_writer import PageWriter, PlannedPage
from broadcaster.outbox.plan_chunks import PlanChunks
from broadcaster.outbox.queues import Enqueuer
from broadcaster.outbox.retry_failed import failed_contacts, failed_pairs, retried_run, retry_key
from broadcaster.outbox.routing import assign_accounts
from broadcaster.outbox.social_planning import social_context, target_rows
from broadcaster.provider_shapes import address_fields, targeted_channels
from broadcaster.settings import Settings
from broadcaster.vocabulary import CampaignState, MessageKind, MessageStatus, RunStatus
from channels.base import Channel
from consent.suppression import address_key

log = logging.getLogger(__name__)

# Exclusions worth a row (kept as ``suppressed`` + reason, so reports can count them); a contact without an
# address on a channel is simply not part of that channel's audience.
RECORDED_EXCLUSIONS = frozenset(
    {
        Exclusion.LANDLINE,
        Exclusion.OPTED_OUT,
        Exclusion.SUPPRESSED,
        Exclusion.NO_PRIOR_CONSENT,
        Exclusion.DO_NOT_CALL,
        Exclusion.CAMPAIGN_LIST,
        Exclusion.TOO_LONG,
        Exclusion.NO_DEVICE,
        Exclusion.PUSH_TOO_LARGE,
        Exclusion.SOCIAL_TOO_LARGE,
    }
)


def idempotency_key(run_id: int, channel: str, address: str | None, *, contact_id: int | None = None) -> str:
    """Unique per (run, channel, address); on push per (run, contact, token), the token hashed since it may
    be longer than the key's column (None: the contact has no device, its one excluded row)."""
    if channel == Channel.PUSH:
        device = hashlib.sha256(address.encode("utf-8")).hexdigest()[:32] if address else "none"
        return f"run:{run_id}:{channel}:{contact_id}:{device}"
    assert address is not None
    # Case-insensitive for e-mail, as the screen de-duplicates: one message per mailbox however it is spelt.
    return _keyed(run_id, channel, address_key(channel, address))


def _keyed(run_id: int, channel: str, key: str) -> str:
    return f"run:{run_id}:{channel}:{key}"


def planned_keys(run_id: int, session: Session, channel: str, keys: list[str]) -> set[str]:
    """The address keys among ``keys`` that run ``run_id`` has a message for on ``channel`` (not push): its
    earlier pages', found through the idempotency key's unique index."""
    by_key = {_keyed(run_id, channel, key): key for key in keys}
    found = session.scalars(
        where_in(session, select(Message.idempotency_key), Message.__table__.c.idempotency_key, list(by_key))
    )
    return {by_key[key] for key in found}


class _PlannedOrInFlight:
    """The screen's ``planned_keys`` while pages are written behind it: the run's messages in the database,
    and those of the pages handed to the writer (``keys``, as the page began) that it has not committed."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.keys: frozenset[str] = frozenset()

    def __call__(self, session: Session, channel: str, keys: list[str]) -> set[str]:
        found = planned_keys(self.run_id, session, channel, keys)
        return found | {key for key in keys if _keyed(self.run_id, channel, key) in self.keys}


def plan_run(
    sessions: sessionmaker[Session], *, run_id: int, settings: Settings, clock: Clock, enqueuer: Enqueuer
) -> int:
    """Plan ``run_id`` (idempotent); returns how many messages the run has queued or suppressed."""
    with fewer_collections():
        return _plan_run(sessions, run_id=run_id, settings=settings, clock=clock, enqueuer=enqueuer)


def _plan_run(
    sessions: sessionmaker[Session], *, run_id: int, settings: Settings, clock: Clock, enqueuer: Enqueuer
) -> int:
    with sessions() as session:
        run = session.get(CampaignRun, run_id)
        if run is None or run.status != RunStatus.PLANNING:
            return 0
        version = required(session, CampaignVersion, run.version_id, referenced_by=f"run {run_id}")
        campaign = required(session, Campaign, run.campaign_id, referenced_by=f"run {run_id}")
        if campaign.state == CampaignState.CANCELLED:
            return 0
        verify_snapshot(version)
        definition = definition_of(version)
        templates = dict(version.templates)
        checkpoint = run.plan_checkpoint
        version_id = version.id
        retries = retried_run(run.trigger)
        urgent = UrgencyCache(session)(version.id)

    composer = Composer(definition=definition, templates=templates, settings=settings)
    tz = definition.zone(settings.timezone)
    providers = {str(channel): spec.provider for channel, spec in definition.channels.items()}
    targeted = targeted_channels(settings.providers, providers)
    chunking = PlanChunks(run_id=run_id, urgent=urgent, settings=settings)
    writer = PageWriter(functools.partial(_write_page, sessions, chunking, run_id=run_id, settings=settings))
    in_flight = _PlannedOrInFlight(run_id)
    screen = Screen(
        [channel for channel in definition.channels if channel not in targeted],
        purpose=definition.purpose.value,
        campaign_id=definition.id,
        tz=tz,
        policy=settings.consent.policy(),
        erasure_key=settings.security.erasure_key(),
        address_fields=address_fields(settings.providers, providers),
        # A retry run keeps the set: it skips some of the audience's messages that a first run would store.
        planned_keys=in_flight if retries is None else None,
    )
    window = definition.schedule.window if definition.schedule else None
    # Posts to named targets (Facebook Pages) go once per run, not per person: a retry run does not re-post.
    if targeted and retries is None:
        now = clock.now()
        with sessions.begin() as session:
            tracked = _planning(session, run_id)
            if tracked is None:
                return 0
            for channel in sorted(targeted):
                rows = target_rows(
                    targets=definition.channels[channel].targets or [],  # type: ignore[index]
                    text=composer.compose(channel, None, with_html=False),
                    channel=channel,
                    provider=providers[channel],
                    run=run_id,
                    version=version_id,
                    campaign_id=definition.id,
                    purpose=definition.purpose.value,
                    now=now,
                    not_before=window.next_open(now, tz) if window and not window.contains(now, tz) else None,
                )
                _insert_chunked(session, chunking, rows, checkpoint=tracked.plan_checkpoint, now=now)

    with readers_of(sessions)() as reader, writer:
        for rows_read in iter_audience_rows(
            reader,
            definition.audience,
            page_size=settings.delivery.plan_page_size,
            after_id=checkpoint,
            within=None if retries is None else failed_contacts(retries),
        ):
            # Each page is read in a read transaction of its own (PostgreSQL's statements see a fresh snapshot
            # anyway): on SQLite a snapshot held through the whole planning kept the write-ahead log from being
            # checkpointed, and it grew by every page written (10 GB at 500,000 contacts), its index in memory.
            reader.rollback()
            if writer.stopped:
                break
            if not rows_read:
                continue
            # Plain rows of the fields the screen, the templates and the price read, not ORM objects.
            page = cast("list[Contact]", rows_read)
            now = clock.now()
            not_before: datetime | None = None
            if window is not None and not window.contains(now, tz):
                not_before = window.next_open(now, tz)
            in_flight.keys = writer.in_flight()  # before this page's reads begin: see PageWriter
            keep = None if retries is None else failed_pairs(reader, retries, [c.id for c in page])
            rows = _rows_for_page(
                reader,
                page,
                keep=keep,
                screen=screen,
                composer=composer,
                run=run_id,
                version=version_id,
                campaign_id=definition.id,
                purpose=definition.purpose.value,
                providers=providers,
                settings=settings,
                now=now,
                not_before=not_before,
            )
            reader.rollback()
            if definition.fallback is not None:  # before the writer takes the keys: fallbacks get their own
                link_fallbacks(rows, definition.fallback, now=now)
            carriers = {c.id: c.carrier for c in page} if settings.routes else {}
            writer.put(PlannedPage(rows=rows, carriers=carriers, to=page[-1].id, now=now))
    if writer.stopped:
        log.info("run %s was cancelled while being planned; planning stops", run_id)
        return 0

    with sessions.begin() as session:
        tracked = _planning(session, run_id)
        if tracked is None:
            log.info("run %s was cancelled while being planned; nothing is sent", run_id)
            return 0
        total = session.scalar(select(func.count()).select_from(Message).where(Message.run_id == run_id)) or 0
        tracked.planned_messages = total
        tracked.planned_at = clock.now()
        tracked.status = RunStatus.SENDING
        session.flush()
        chunks = chunking.ready(session, now=clock.now())
    enqueue_chunks(sessions, enqueuer, chunks, clock=clock)
    log.info("planned run %s: %s messages in %s chunks", run_id, total, len(chunks))
    return total


def _write_page(
    sessions: sessionmaker[Session],
    chunking: PlanChunks,
    page: PlannedPage,
    *,
    run_id: int,
    settings: Settings,
) -> bool:
    """One page's messages and the run's checkpoint, in one transaction (the writer thread's); False when
    the run is no longer being planned."""
    with sessions.begin() as session:
        _plans_for_this_size(session)
        tracked = _planning(session, run_id)
        if tracked is None:
            return False
        if settings.routes:  # SMS accounts by allocated carrier and weight, the healthy ones
            assign_accounts(session, page.rows, page.carriers, settings=settings, now=page.now)
        _insert_chunked(
            session, chunking, page.rows, checkpoint=tracked.plan_checkpoint, now=page.now, to=page.to
        )
        tracked.plan_checkpoint = page.to
        tracked.plan_touched_at = page.now
    return True


def _insert_chunked(
    session: Session,
    chunking: PlanChunks,
    rows: list[dict[str, Any]],
    *,
    checkpoint: int,
    now: datetime,
    to: int | None = None,
) -> None:
    """Insert a page's rows, the due ones in their chunks; ``to``: the checkpoint the page moves the run to."""
    chunking.assign(session, rows, checkpoint=checkpoint, now=now)
    inserted = insert_ignoring_conflicts(session, Message.__table__, rows, conflict=["idempotency_key"])  # type: ignore[arg-type]
    chunking.settle(session, inserted=inserted, given=len(rows), checkpoint=checkpoint if to is None else to)


# SQLite: pages of write-ahead log a planning connection lets pile up before it checkpoints them (about
# 100 MB). At the default 1,000 (4 MB) a page's commit checkpointed nearly every time, each checkpoint an
# fsync and a copy of index pages the next page dirtied again.
PLANNING_AUTOCHECKPOINT = 25000


def _plans_for_this_size(session: Session) -> None:
    """PostgreSQL: plan this page's statements for the tables as they are now. psycopg prepares a statement
    run five times, and the server may then keep a generic plan made while ``messages`` was small (before
    any ANALYZE): the lookup of a page's addresses by idempotency key then scanned the whole table, 0.8 s a
    page at 100,000 rows instead of a few milliseconds (docs/architecture.md, "Planning at scale"). SQLite:
    checkpoint less often (``PLANNING_AUTOCHECKPOINT``; the pooled connection keeps the setting)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    else:
        session.execute(text(f"PRAGMA wal_autocheckpoint = {PLANNING_AUTOCHECKPOINT}"))


def _planning(session: Session, run_id: int) -> CampaignRun | None:
    """The run, locked for this transaction, while it is still being planned (None: it was cancelled,
    e.g. because a newer version was approved, and nothing more of it may be queued)."""
    run = session.scalar(select(CampaignRun).where(CampaignRun.id == run_id).with_for_update())
    return run if run is not None and run.status == RunStatus.PLANNING else None


def _rows_for_page(
    session: Session,
    page: list[Contact],
    *,
    keep: set[tuple[int, str, str | None]] | None,
    screen: Screen,
    composer: Composer,
    run: int,
    version: int,
    campaign_id: str,
    purpose: str,
    providers: dict[str, str],
    settings: Settings,
    now: datetime,
    not_before: datetime | None,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    # The policy judges each message at the moment it may first go: now, or when the send window opens.
    for decision in screen.page(session, page, at=not_before or now):
        if (
            keep is not None
            and retry_key(decision.contact.id, decision.channel, decision.address) not in keep
        ):
            continue  # a retry run: this channel (this device, on push) reached the contact last time
        if decision.exclusion is not None and decision.exclusion not in RECORDED_EXCLUSIONS:
            continue
        # Only a push row may lack an address: the contact's one row saying it has no device.
        address = decision.address or ""
        # The contact's view is stored with an e-mail (its HTML is rendered at send time from it); another
        # channel's text is found without building it when the fields its template reads were seen before.
        view = contact_view(decision.contact) if decision.channel == Channel.EMAIL else None
        text = (
            composer.compose(decision.channel, view, with_html=False)
            if view is not None
            else composer.compose_contact(decision.channel, decision.contact)
        )
        exclusion = decision.exclusion or (
            too_big_reason(decision.channel, text.too_long) if text.too_long or text.too_large else None
        )
        cost = None
        if decision.channel == Channel.SMS and text.encoding and text.segments:
            cost = (
                settings.sms.price(carrier=decision.contact.carrier, encoding=text.encoding) * text.segments
            )
        suppressed = exclusion is not None
        rows.append(
            {
                "idempotency_key": idempotency_key(
                    run, decision.channel, decision.address, contact_id=decision.contact.id
                ),
                "kind": MessageKind.CAMPAIGN,
                "run_id": run,
                "campaign_id": campaign_id,
                "version_id": version,
                "contact_id": decision.contact.id,
                "chunk_id": None,
                "channel": decision.channel,
                "provider": providers[decision.channel],
                "address": address,
                "address_key": decision.key or address_key(decision.channel, address),
                "purpose": purpose,
                "status": MessageStatus.SUPPRESSED if suppressed else MessageStatus.QUEUED,
                "hold": False,
                "reason": exclusion or decision.deferral,
                "error_code": None,
                # The later of the window's opening and the policy's moment (send hours, caps).
                "not_before": None if suppressed else (decision.not_before or not_before),
                "attempts": 0,
                "subject": text.subject,
                "body": text.body,
                "context": _stored_context(decision.channel, view, text),
                "encoding": text.encoding,
                "segments": text.segments,
                "cost": cost,
                "provider_ref": None,
                "parts_total": 0,
                "parts_delivered": 0,
                "created_at": now,
                "claimed_at": None,
                "sent_at": None,
                "final_at": now if suppressed else None,
            }
        )
    return rows


def _stored_context(channel: str, view: dict[str, Any] | None, text: MessageText) -> dict[str, Any]:
    # E-mail HTML is re-rendered at send time from the snapshot and this context; a push notification's deep
    # link and a social message's link, image and template are kept as rendered (``outbox/composition.py``
    # puts them in the outbound options).
    if channel == Channel.EMAIL:
        return view or {}
    if channel == Channel.PUSH:
        return push_context(text.link)
    if channel == Channel.SOCIAL:
        return social_context(text)
    return {}
