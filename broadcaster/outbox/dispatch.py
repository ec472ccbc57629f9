"""Send one chunk window by window: check the campaign's state and send window, claim the window with a
single ``UPDATE … RETURNING``, take rate-limit tokens, hand it to the adapter, record the results.

Windows overlap (one or more on the wire, as the adapter allows, while the next is claimed and the last
recorded), and no transaction stays open across network I/O: claim (commit) → send → record (commit).
"""

from __future__ import annotations

import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from broadcaster import audit
from broadcaster.campaigns import workflow
from broadcaster.campaigns.messages import Composer, allow_unsubscribe
from broadcaster.campaigns.schema import CampaignDefinition, OnUncertain
from broadcaster.campaigns.store import definition_of
from broadcaster.clock import Clock
from broadcaster.coalesce import Coalescer
from broadcaster.context import AppContext
from broadcaster.db.engine import readers_of
from broadcaster.db.models import Campaign, CampaignRun, CampaignVersion, Chunk, Message, MessagePart
from broadcaster.outbox.adapters import AdapterPool
from broadcaster.outbox.handback import worker_id
from broadcaster.outbox.health import health_recorder
from broadcaster.outbox.inbound import inbound_batch_handler, process_pending
from broadcaster.outbox.ratelimit import SharedPacer
from broadcaster.outbox.results import Claimed, WindowOutcome, apply_results, parse_sms_reference
from broadcaster.settings import Settings
from broadcaster.unsubscribe import make_token, unsubscribe_link
from broadcaster.vocabulary import CampaignState, MessageStatus, RunStatus
from channels.base import Adapter, OutboundMessage, Reconnecting, SendResult
from channels.errors import PermanentError

log = logging.getLogger(__name__)

# How often a gateway asks for its stored receipts to be applied while they keep coming (seconds).
HAND_OFF_INTERVAL = 0.25
# Windows on the wire at once, whatever an adapter declares (each holds a sender thread).
MAX_OVERLAP = 4
# While a provider's link is down, how often the waiting chunk looks at its campaign's state (seconds).
LINK_POLL_SECONDS = 1.0


@dataclass
class DispatchSummary:
    chunk_id: int
    windows: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    stopped: str | None = None  # why the chunk stopped before its rows ran out


@dataclass
class _Line:
    """One chunk's connection to its provider, for the duration of ``run_chunk``."""

    adapter: Adapter
    chunk_id: int
    provider: str
    window: int
    overlap: int
    tps: float | None
    deadline: float


@dataclass(frozen=True)
class _Stop:
    reason: str | None  # None: nothing left to send


@dataclass
class _Window:
    """A claimed window: its rows, what goes on the wire, and the send in progress."""

    claimed: dict[int, Claimed]
    outbound: list[OutboundMessage]
    started_at: datetime | None = None
    future: Future[list[SendResult]] | None = None
    # Results the adapter reported (and we recorded) before send() returned, and what recording them did.
    recorded: set[int] = field(default_factory=set)
    early: WindowOutcome = field(default_factory=WindowOutcome)

    def results(self) -> list[SendResult]:
        assert self.future is not None
        return self.future.result()


class VersionCache:
    """Definitions and composers per campaign version, built once per worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._definitions: dict[int, CampaignDefinition] = {}
        self._composers: dict[int, Composer] = {}

    def definition(self, session: Session, version_id: int) -> CampaignDefinition:
        if version_id not in self._definitions:
            version = session.get(CampaignVersion, version_id)
            assert version is not None
            self._definitions[version_id] = definition_of(version)
            self._composers[version_id] = Composer(
                definition=self._definitions[version_id],
                templates=dict(version.templates),
                settings=self.settings,
            )
        return self._definitions[version_id]

    def composer(self, session: Session, version_id: int) -> Composer:
        self.definition(session, version_id)
        return self._composers[version_id]


class Dispatcher:
    """One per worker process: owns the adapters and caches; ``run_chunk`` is the task body."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        settings: Settings,
        clock: Clock,
        adapters: AdapterPool,
        match_receipts: bool = True,
        wait_for_links: bool = False,
    ) -> None:
        # ``match_receipts``: after each window, apply the receipts that beat its commit. Off when another
        # process applies inbound records (the gateway then spends its CPU on the wire).
        self.match_receipts = match_receipts
        # ``wait_for_links``: a gateway waits for its provider's link to come back (within the chunk's time)
        # instead of claiming messages it could not write; a test send fails at once instead.
        self.wait_for_links = wait_for_links
        self.sessions = sessions
        self.readers = readers_of(sessions)
        self.settings = settings
        self.clock = clock
        self.adapters = adapters
        self.versions = VersionCache(settings)
        self._executor: ThreadPoolExecutor | None = None
        self.hand_offs: list[Coalescer] = []  # see dispatcher_for

    def run_chunk(self, chunk_id: int) -> DispatchSummary:
        """Send the chunk's due rows window by window, keeping the provider busy.

        Windows overlap: while ``overlap`` windows are on the wire (on sender threads), the next one is
        claimed and rendered, and the oldest one's results are recorded as soon as they are in. The state
        checks (pause, cancel, send window) run before each claim and again before a window that waited
        goes out, so a pause takes effect within a window or two.
        """
        summary = DispatchSummary(chunk_id=chunk_id)
        with self.sessions.begin() as session:
            chunk = session.get(Chunk, chunk_id)
            if chunk is None:
                summary.stopped = "no such chunk"
                return summary
            provider, channel = chunk.provider, chunk.channel
            chunk.worker = worker_id()  # if this process dies, the supervisor hands the chunk back
        adapter = self.adapters.get(provider)
        line = _Line(
            adapter=adapter,
            chunk_id=chunk_id,
            provider=provider,
            window=max(1, adapter.capabilities.window),
            overlap=min(max(1, adapter.capabilities.overlap), MAX_OVERLAP),
            tps=self.settings.provider(provider).tps,
            deadline=time.monotonic() + self.settings.delivery.chunk_max_seconds,
        )
        ahead: _Window | _Stop | None = None  # None: the next window is not prepared yet
        on_wire: deque[_Window] = deque()  # oldest first
        try:
            while True:
                ahead = self._fill_wire(line, on_wire, ahead)
                if not on_wire:
                    assert isinstance(ahead, _Stop)
                    summary.stopped = ahead.reason
                    break
                if ahead is None:
                    ahead = self._prepare(line)  # claimed while the wire is busy
                done = on_wire.popleft()
                results = done.results()
                # Keep the provider busy while this window's results are recorded.
                ahead = self._fill_wire(line, on_wire, ahead, prepare=False)
                stop = self._record(line, done, results, summary)
                if stop is not None:
                    summary.stopped = stop
                    break
        finally:
            for window in on_wire:  # already written: their results must be recorded
                self._record(line, window, window.results(), summary)
            if isinstance(ahead, _Window):  # claimed but never sent: back to the queue untouched
                self._unclaim(list(ahead.claimed))
        self._finish(chunk_id)
        log.info("chunk %s (%s via %s): %s", chunk_id, channel, provider, summary)
        return summary

    def _fill_wire(
        self, line: _Line, on_wire: deque[_Window], ahead: _Window | _Stop | None, *, prepare: bool = True
    ) -> _Window | _Stop | None:
        """Put windows on the wire while it has room; returns what is left ahead (a stop, or nothing).

        A window prepared earlier is checked again just before it goes: a pause or a cancel that came while
        it waited stops it (it returns to the queue untouched)."""
        while len(on_wire) < line.overlap:
            if isinstance(ahead, _Window):
                ahead = self._still_cleared(line, ahead)
            elif ahead is None and prepare:
                ahead = self._prepare(line)
            if not isinstance(ahead, _Window):
                break
            on_wire.append(self._put_on_wire(line, ahead))
            ahead = None
        return ahead

    def _prepare(self, line: _Line) -> _Window | _Stop:
        """The next window, claimed and paced; or why there is none."""
        if time.monotonic() > line.deadline:
            self._release(line.chunk_id, not_before=None)
            return _Stop("chunk_max_seconds reached; the rest goes back to the queue")
        stop = self._check_state(line.chunk_id)
        if stop is None and self.wait_for_links:
            stop = self._await_link(line)
        if stop is not None:
            return _Stop(stop)
        size = line.window
        if line.tps and not self.adapters.paces(line.provider):
            # One token per message, all taken before the window is claimed, so no row waits in sending
            # for the rate limit. (An SMPP adapter paces itself, one token per submit_sm as it writes them:
            # carriers meter PDUs, and a long SMS is several.)
            size = self._due_count(line.chunk_id, line.window)
            pacer = self._pacer(line.provider, line.tps)
            wanted = size
            while wanted > 0:
                wanted -= pacer(wanted)
        claimed, outbound = self._claim(line.chunk_id, size) if size else ({}, [])
        if not claimed:
            return _Stop(None)  # the chunk's due rows ran out
        return _Window(claimed=claimed, outbound=outbound)

    def _await_link(self, line: _Line) -> str | None:
        """Wait for a reconnecting provider's link; returns why the chunk stops instead, if it must.

        Nothing is claimed meanwhile, so no attempt is spent; the chunk goes on within a second of the bind
        (the adapter records the outage in ``provider_health`` for whoever waits)."""
        adapter = line.adapter
        if not isinstance(adapter, Reconnecting) or adapter.wait_bound(0):
            return None
        log.warning("chunk %s: provider %s unreachable; waiting for it", line.chunk_id, line.provider)
        while not adapter.wait_bound(LINK_POLL_SECONDS):
            if time.monotonic() > line.deadline:
                self._release(line.chunk_id, not_before=None)
                return f"provider {line.provider} unreachable; the rest goes back to the queue"
            stop = self._check_state(line.chunk_id)
            if stop is not None:
                return stop
        log.info("chunk %s: provider %s reachable again", line.chunk_id, line.provider)
        return None

    def _pacer(self, provider: str, tps: float) -> SharedPacer:
        """The pacer of a provider's bucket, shared by every process sending through it."""
        return SharedPacer(self.sessions, name=f"provider:{provider}", rate=tps)

    def _still_cleared(self, line: _Line, window: _Window) -> _Window | _Stop:
        stop = self._check_state(line.chunk_id)
        if stop is None:
            return window
        self._unclaim(list(window.claimed))
        return _Stop(stop)

    def _put_on_wire(self, line: _Line, window: _Window) -> _Window:
        if not self.adapters.stamps(line.provider):
            # The adapter cannot say when each message's bytes go: the whole window counts as handed over.
            mark_handed(self.sessions, list(window.claimed), now=self.clock.now())
        window.started_at = self.clock.now()
        send: Callable[..., list[SendResult]] = line.adapter.send
        if line.adapter.capabilities.settles:
            send = functools.partial(send, on_settled=functools.partial(self._record_early, line, window))
        window.future = self._sender().submit(send, window.outbound)
        return window

    def _record_early(self, line: _Line, window: _Window, results: Sequence[SendResult]) -> None:
        """Record results the adapter reports before its send() returns (on a sender thread), so a crash
        holds only the messages really in flight. Permanent failures wait for the whole window: whether
        they suppress anyone depends on how much of the window failed."""
        now = self.clock.now()
        results = [r for r in results if not isinstance(r.error, PermanentError)]
        if not results:
            return
        with self.sessions.begin() as session:
            outcome = apply_results(
                session, claimed=window.claimed, results=results, settings=self.settings.delivery, now=now
            )
            if self.match_receipts and line.adapter.capabilities.receipts and outcome.sent:
                process_pending(
                    session, now=now, provider=line.provider, limit=500, received_after=window.started_at
                )
        window.recorded.update(r.message_id for r in results)
        window.early.add(outcome)

    def _sender(self) -> ThreadPoolExecutor:
        if self._executor is None:
            # Threads start only as windows overlap: an adapter that takes one call at a time uses one.
            self._executor = ThreadPoolExecutor(max_workers=MAX_OVERLAP, thread_name_prefix="sender")
        return self._executor

    def _record(
        self, line: _Line, window: _Window, results: list[SendResult], summary: DispatchSummary
    ) -> str | None:
        """Apply one window's results; returns why the chunk must stop, if it must."""
        now = self.clock.now()
        late = [r for r in results if r.message_id not in window.recorded]
        with self.sessions.begin() as session:
            outcome = apply_results(
                session,
                claimed=window.claimed,
                results=late,
                settings=self.settings.delivery,
                now=now,
                window_size=len(results),
            )
            outcome.add(window.early)
            if self.match_receipts and line.adapter.capabilities.receipts and outcome.sent:
                # Receipts that beat this commit (the SMSC answered before we stored the part) match now.
                process_pending(
                    session, now=now, provider=line.provider, limit=500, received_after=window.started_at
                )
            if outcome.configuration_error is not None:
                reason = f"provider {line.provider}: configuration error: {outcome.configuration_error}"
                self._pause_provider(session, line.provider, reason)
            if outcome.auto_paused is not None:
                campaigns = {c.campaign_id for c in window.claimed.values()}
                self._pause_campaigns(session, campaigns, outcome.auto_paused)
        summary.windows += 1
        summary.sent += outcome.sent
        summary.deferred += outcome.deferred
        summary.failed += outcome.failed
        summary.unknown += outcome.unknown
        if outcome.configuration_error is not None:
            self.adapters.discard(line.provider)
            return f"configuration error: {outcome.configuration_error}"
        if outcome.auto_paused is not None:
            return outcome.auto_paused
        if outcome.throttled_for:
            time.sleep(min(outcome.throttled_for, 5.0))  # the provider asked us to slow down
        return None

    def _unclaim(self, ids: list[int]) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(Message)
                .where(Message.id.in_(ids), Message.status == MessageStatus.SENDING)
                .values(
                    status=MessageStatus.QUEUED,
                    attempts=Message.attempts - 1,
                    claimed_at=None,
                    claimed_by=None,
                    handed_at=None,
                )
            )
            # A cancel that came while the window waited leaves nothing of it to send later.
            cancelled = select(Campaign.id).where(Campaign.state == CampaignState.CANCELLED)
            session.execute(
                update(Message)
                .where(
                    Message.id.in_(ids),
                    Message.status == MessageStatus.QUEUED,
                    Message.campaign_id.in_(cancelled),
                )
                .values(
                    status=MessageStatus.CANCELLED, reason="campaign cancelled", final_at=self.clock.now()
                )
            )
            _cancel_queued_of_cancelled_runs(session, Message.id.in_(ids), now=self.clock.now())

    def close(self) -> None:
        """Stop the sender thread and close the adapters (the process is done sending)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self.adapters.close()
        for coalescer in self.hand_offs:  # after the adapters: the last receipts are asked for too
            coalescer.close()

    # -- steps -------------------------------------------------------------------------------------------

    def _check_state(self, chunk_id: int) -> str | None:
        """Stop on a paused or cancelled campaign, or a cancelled run (a newer version was approved); outside
        the send window, defer the rest to its opening."""
        with self.readers() as session:
            row = session.execute(
                select(
                    Campaign.id, Campaign.state, CampaignRun.id, CampaignRun.status, CampaignRun.version_id
                )
                .select_from(Chunk)
                .join(CampaignRun, CampaignRun.id == Chunk.run_id)
                .join(Campaign, Campaign.id == CampaignRun.campaign_id)
                .where(Chunk.id == chunk_id)
            ).first()
            if row is None:  # test sends have no run
                return None
            campaign_id, state, run_id, run_status, version_id = row
            if state in (CampaignState.PAUSED, CampaignState.CANCELLED):
                return f"campaign {campaign_id} is {state.value}"
            definition = self.versions.definition(session, version_id)
        if run_status == RunStatus.CANCELLED:  # e.g. a newer version was approved: its rows never go
            with self.sessions.begin() as session:
                _cancel_queued_of_cancelled_runs(session, Message.chunk_id == chunk_id, now=self.clock.now())
            return f"run {run_id} is cancelled"
        if definition.schedule is not None and definition.schedule.window is not None:
            tz = ZoneInfo(definition.schedule.timezone)
            now = self.clock.now()
            if not definition.schedule.window.contains(now, tz):
                opens = definition.schedule.window.next_open(now, tz)
                self._release(chunk_id, not_before=opens)
                return f"outside the send window; deferred to {opens.isoformat()}"
        return None

    def _due(self, chunk_id: int, window: int, now: datetime) -> Select[int]:
        """The chunk's next ``window`` rows that may be sent now."""
        return (
            select(Message.id)
            .where(
                Message.chunk_id == chunk_id,
                Message.status == MessageStatus.QUEUED,
                Message.hold.is_(False),
                or_(Message.not_before.is_(None), Message.not_before <= now),
            )
            .order_by(Message.id)
            .limit(window)
        )

    def _due_count(self, chunk_id: int, window: int) -> int:
        with self.readers() as session:
            due = self._due(chunk_id, window, self.clock.now()).subquery()
            return int(session.scalar(select(func.count()).select_from(due)) or 0)

    def _claim(self, chunk_id: int, window: int) -> tuple[dict[int, Claimed], list[OutboundMessage]]:
        now = self.clock.now()
        with self.sessions.begin() as session:
            due = self._due(chunk_id, window, now).scalar_subquery()
            rows = session.execute(
                update(Message)
                .where(Message.id.in_(due), Message.status == MessageStatus.QUEUED)
                .values(
                    status=MessageStatus.SENDING,
                    claimed_at=now,
                    claimed_by=worker_id(),
                    handed_at=None,
                    attempts=Message.attempts + 1,
                )
                .returning(
                    Message.id,
                    Message.address,
                    Message.channel,
                    Message.provider,
                    Message.attempts,
                    Message.campaign_id,
                    Message.version_id,
                    Message.subject,
                    Message.body,
                    Message.context,
                    Message.encoding,
                    Message.provider_ref,
                )
            ).all()
        # Rendered after the commit: the write lock is not held while templates run (other processes claim
        # and record meanwhile). Rows that cannot be rendered go back to the queue as they were.
        claimed: dict[int, Claimed] = {}
        outbound: list[OutboundMessage] = []
        try:
            # Read for a campaign version seen for the first time, and for the parts accepted before a retry.
            with self.readers() as session:
                accepted = _accepted_parts(session, rows)
                for row in sorted(rows, key=lambda r: r.id):
                    definition = self.versions.definition(session, row.version_id) if row.version_id else None
                    claimed[row.id] = Claimed(
                        id=row.id,
                        address=row.address,
                        channel=row.channel,
                        provider=row.provider,
                        attempts=row.attempts,
                        campaign_id=row.campaign_id,
                        on_uncertain=definition.on_uncertain if definition else OnUncertain.HOLD,
                    )
                    outbound.append(self._outbound(session, row, definition, accepted.get(row.id, {})))
        except BaseException:
            self._unclaim([row.id for row in rows])
            raise
        return claimed, outbound

    def _outbound(
        self,
        session: Session,
        row: Any,
        definition: CampaignDefinition | None,
        accepted_parts: dict[int, str],
    ) -> OutboundMessage:
        html = None
        body = row.body
        unsubscribe = False
        options: dict[str, Any] = {}
        if row.channel == "email" and definition is not None:
            secret = self.settings.security.unsubscribe_secret
            unsubscribe = allow_unsubscribe(definition, "email") and bool(secret)
            link = None
            if unsubscribe:
                options["unsubscribe_token"] = make_token(secret, row.id)
                provider_options = self.settings.provider(row.provider).options()
                link = unsubscribe_link(provider_options, options["unsubscribe_token"])
            composer = self.versions.composer(session, row.version_id)
            html = composer.html(row.context or None, unsubscribe_url=link)
            if link is not None:  # the link is personal: both parts are rendered with it now
                body = composer.email_text(row.context or None, unsubscribe_url=link, planned=row.body)
        return OutboundMessage(
            message_id=row.id,
            address=row.address,
            body=body,
            subject=row.subject,
            html=html,
            encoding=row.encoding,
            campaign_key=f"v{row.version_id}" if row.version_id else None,
            allow_unsubscribe=unsubscribe,
            options=options,
            sms_reference=parse_sms_reference(row.provider_ref) if row.channel == "sms" else None,
            accepted_parts=accepted_parts,
        )

    def _release(self, chunk_id: int, *, not_before: datetime | None) -> None:
        """Hand the chunk's unclaimed rows back to the tick (which cuts new chunks when they are due)."""
        values: dict[str, Any] = {"chunk_id": None}
        if not_before is not None:
            values["not_before"] = not_before
        with self.sessions.begin() as session:
            session.execute(
                update(Message)
                .where(Message.chunk_id == chunk_id, Message.status == MessageStatus.QUEUED)
                .values(**values)
            )

    def _finish(self, chunk_id: int) -> None:
        now = self.clock.now()
        with self.sessions.begin() as session:
            chunk = session.get(Chunk, chunk_id)
            if chunk is None:
                return
            left = session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.chunk_id == chunk_id, Message.status == MessageStatus.QUEUED)
            )
            if not left:
                chunk.finished_at = now
            if chunk.run_id is not None:
                complete_run_if_done(session, chunk.run_id, now)

    def _pause_provider(self, session: Session, provider: str, reason: str) -> None:
        campaign_ids = set(
            session.scalars(
                select(Message.campaign_id)
                .where(
                    Message.provider == provider,
                    Message.status == MessageStatus.QUEUED,
                    Message.campaign_id.is_not(None),
                )
                .distinct()
            )
        )
        self._pause_campaigns(session, campaign_ids, reason)

    def _pause_campaigns(self, session: Session, campaign_ids: set[str | None], reason: str) -> None:
        for campaign_id in sorted(c for c in campaign_ids if c):
            campaign = session.get(Campaign, campaign_id)
            if campaign is not None and campaign.state not in (
                CampaignState.PAUSED,
                CampaignState.CANCELLED,
                CampaignState.COMPLETED,
            ):
                workflow.pause(
                    session,
                    campaign_id=campaign_id,
                    actor=None,
                    clock=self.clock,
                    reason=reason,
                    system="engine",
                )
                log.warning("paused campaign %s: %s", campaign_id, reason)


def _accepted_parts(session: Session, rows: Sequence[Any]) -> dict[int, dict[int, str]]:
    """Per claimed SMS that an earlier attempt sent part of: the parts the SMSC accepted (number -> id)."""
    resumed = [
        row.id for row in rows if row.channel == "sms" and parse_sms_reference(row.provider_ref) is not None
    ]
    accepted: dict[int, dict[int, str]] = {}
    if resumed:
        parts = session.execute(
            select(MessagePart.message_id, MessagePart.number, MessagePart.provider_id).where(
                MessagePart.message_id.in_(resumed)
            )
        )
        for message_id, number, provider_id in parts:
            accepted.setdefault(message_id, {})[number] = provider_id
    return accepted


def _cancel_queued_of_cancelled_runs(session: Session, *where: Any, now: datetime) -> None:
    """Cancel the queued rows (matching ``where``) of runs that were cancelled, each with its run's reason."""
    runs = session.execute(
        select(CampaignRun.id, CampaignRun.ended_reason).where(
            CampaignRun.status == RunStatus.CANCELLED,
            CampaignRun.id.in_(select(Message.run_id).where(Message.status == MessageStatus.QUEUED, *where)),
        )
    ).all()
    for run_id, ended_reason in runs:
        session.execute(
            update(Message)
            .where(Message.run_id == run_id, Message.status == MessageStatus.QUEUED, *where)
            .values(status=MessageStatus.CANCELLED, reason=ended_reason or "run cancelled", final_at=now)
        )


def complete_run_if_done(session: Session, run_id: int, now: datetime) -> bool:
    """A run is complete when none of its messages waits to be sent (receipts may still come later);
    ``completed_with_held`` while some are held as ``unknown``, until an operator settles them.

    A campaign without a schedule section is sent once: it is completed with its run."""
    pending = session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.run_id == run_id, Message.status.in_([MessageStatus.QUEUED, MessageStatus.SENDING]))
    )
    if pending:
        return False
    held = session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.run_id == run_id, Message.status == MessageStatus.UNKNOWN)
    )
    status = RunStatus.COMPLETED_WITH_HELD if held else RunStatus.COMPLETED
    result = session.execute(
        update(CampaignRun)
        .where(
            CampaignRun.id == run_id,
            CampaignRun.status.in_([RunStatus.SENDING, RunStatus.COMPLETED_WITH_HELD]),
            CampaignRun.status != status,
        )
        .values(status=status, finished_at=now)
    )
    if not getattr(result, "rowcount", 0):
        return False
    run = session.get(CampaignRun, run_id)
    assert run is not None
    version = session.get(CampaignVersion, run.version_id)
    assert version is not None
    if definition_of(version).schedule is None:
        completed = session.execute(
            update(Campaign)
            .where(
                Campaign.id == run.campaign_id,
                Campaign.state == CampaignState.APPROVED,
                Campaign.approved_version_id == run.version_id,  # an older version's run finishing late
            )
            .values(state=CampaignState.COMPLETED, updated_at=now)
        )
        if getattr(completed, "rowcount", 0):
            audit.record(
                session,
                actor="engine",
                action="campaign.completed",
                subject_type="campaign",
                subject_id=run.campaign_id,
                at=now,
                details={"run_id": run_id, "version": version.number},
            )
    return True


def mark_handed(sessions: sessionmaker[Session], message_ids: Sequence[int], *, now: datetime) -> None:
    """Record (committed) that these claimed messages are about to be written to their provider."""
    with sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.id.in_(message_ids), Message.status == MessageStatus.SENDING)
            .values(handed_at=now)
        )


def dispatcher_for(
    context: AppContext, *, hand_off: Callable[[str], None] | None = None, gateway: bool = False
) -> Dispatcher:
    """A process's dispatcher, whose adapters store what providers send back through ``context``.

    A ``gateway`` (a worker process) keeps its SMPP binds up in the background and waits for them when the
    SMSC is down; otherwise (a test send, say) an unreachable provider fails at once.

    With ``hand_off``, applying it is left to another process: ``hand_off(provider)`` asks for that, at
    most once per ``HAND_OFF_INTERVAL`` per provider however many receipt batches were stored meanwhile."""
    coalescers: list[Coalescer] = []

    def inbound(provider: str) -> Callable[[list[dict[str, Any]]], None]:
        request = None
        if hand_off is not None:
            coalescer = Coalescer(
                functools.partial(hand_off, provider), interval=HAND_OFF_INTERVAL, name=f"hand-off-{provider}"
            )
            coalescers.append(coalescer)
            request = coalescer.request
        return inbound_batch_handler(
            context.sessions,
            provider=provider,
            channel=context.settings.provider(provider).channel,
            clock=context.clock,
            hand_off=request,
        )

    dispatcher = Dispatcher(
        sessions=context.sessions,
        settings=context.settings,
        clock=context.clock,
        adapters=AdapterPool(
            context.settings,
            inbound=inbound,
            pacer=lambda provider, tps: SharedPacer(context.sessions, name=f"provider:{provider}", rate=tps),
            health=lambda provider: health_recorder(context.sessions, provider, clock=context.clock),
            handing=lambda ids: mark_handed(context.sessions, ids, now=context.clock.now()),
            bind_in_background=gateway,
        ),
        match_receipts=hand_off is None,
        wait_for_links=gateway,
    )
    dispatcher.hand_offs = coalescers
    return dispatcher
