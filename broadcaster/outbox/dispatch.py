"""Send one chunk window by window: check the campaign's state and send window, claim the window with a
single ``UPDATE … RETURNING``, take rate-limit tokens, hand it to the adapter, record the results.

Windows overlap (one or more on the wire, as the adapter allows, while the next is claimed and the last
recorded), and no transaction stays open across network I/O: claim (commit) → send → record (commit).
This module is the loop; the steps are ``pauses`` (may the chunk go on), ``claims``, ``composition`` (rows
→ what goes on the wire), ``recording`` and ``completion``.
"""

from __future__ import annotations

import contextvars
import functools
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.clock import Clock
from broadcaster.coalesce import Coalescer
from broadcaster.context import AppContext
from broadcaster.db.engine import readers_of
from broadcaster.db.models import CampaignRun, Chunk
from broadcaster.logs import log_fields
from broadcaster.outbox.adapters import AdapterPool
from broadcaster.outbox.chunks import cut_chunks
from broadcaster.outbox.claims import claim, due_count, mark_handed, release, unclaim
from broadcaster.outbox.completion import finish_chunk
from broadcaster.outbox.composition import VersionCache, compose
from broadcaster.outbox.handback import worker_id
from broadcaster.outbox.health import health_recorder
from broadcaster.outbox.inbound import inbound_batch_handler
from broadcaster.outbox.instruments import SEND_WINDOW_SECONDS, timed_pacer
from broadcaster.outbox.outcomes import OutcomeWindow, state_recorder
from broadcaster.outbox.pacing import Pacer, PacerFactory, pacer_factory
from broadcaster.outbox.pauses import check_state
from broadcaster.outbox.queues import Enqueuer
from broadcaster.outbox.ratelimit import urgent_traffic
from broadcaster.outbox.recording import ChunkFacts, Recorder
from broadcaster.outbox.replies import ReplyRules
from broadcaster.outbox.results import Claimed, WindowOutcome
from broadcaster.outbox.routing import Router, move_queued, unhealthy_providers
from broadcaster.outbox.screening import screen_claimed
from broadcaster.outbox.windows import Window
from broadcaster.settings import Settings
from channels.base import Adapter, OutboundMessage, Reconnecting, SendResult
from channels.masking import mask_text

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
    facts: ChunkFacts
    chunk_id: int
    provider: str
    window: int
    overlap: int
    tps: float | None
    deadline: float


@dataclass(frozen=True)
class _Stop:
    reason: str | None  # None: nothing left to send


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
        enqueuer: Enqueuer | None = None,
        pacers: PacerFactory | None = None,
    ) -> None:
        # ``wait_for_links``: a gateway waits for its provider's link to come back (within the chunk's time)
        # instead of claiming messages it could not write; a test send fails at once instead.
        self.wait_for_links = wait_for_links
        self.sessions = sessions
        self.readers = readers_of(sessions)
        self.settings = settings
        self.clock = clock
        self.adapters = adapters
        self.versions = VersionCache(settings)
        # ``match_receipts``: after each window, apply the receipts that beat its commit (see Recorder).
        self.recorder = Recorder(
            sessions=sessions, settings=settings, clock=clock, match_receipts=match_receipts
        )
        self._executor: ThreadPoolExecutor | None = None
        self._pacers = pacers or pacer_factory(sessions, settings, clock=clock)
        # Routing ([routes.NAME]): the chunks of an account that is down or slow move to a healthy one, whose
        # new chunks go out through ``enqueuer`` (without one, the tick cuts and sends them).
        self.router = Router(settings)
        self.enqueuer = enqueuer
        self.outcomes = OutcomeWindow(settings.routing, on_change=state_recorder(sessions, now=clock.now))
        self.hand_offs: list[Coalescer] = []  # see dispatcher_for
        # True once the process is told to stop (a worker's warm shutdown): a chunk then ends after the windows
        # on the wire are answered, and its other rows go back to the queue, instead of running to
        # ``chunk_max_seconds`` while the shutdown waits for it.
        self.stopping: Callable[[], bool] = lambda: False

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
            urgent = chunk.queue.endswith(".urgent")
            chunk.worker = worker_id()  # if this process dies, the supervisor hands the chunk back
            run_id = chunk.run_id  # None for a test send
            campaign_id = (
                session.scalar(select(CampaignRun.campaign_id).where(CampaignRun.id == run_id))
                if run_id is not None
                else None
            )
        with log_fields(campaign_id=campaign_id, run_id=run_id, chunk_id=chunk_id, provider=provider):
            facts = ChunkFacts(chunk_id, provider, channel, run_id, campaign_id)
            urgency = urgent_traffic.set(urgent)  # the pacers draw for an urgent queue first
            try:
                self._send_chunk(facts, summary)
            finally:
                urgent_traffic.reset(urgency)
            # Why it stopped may quote a provider's answer, and with it a recipient's address.
            log.info("chunk %s (%s via %s): %s", chunk_id, channel, provider, mask_text(str(summary)))
        return summary

    def _send_chunk(self, facts: ChunkFacts, summary: DispatchSummary) -> None:
        chunk_id, provider = facts.chunk_id, facts.provider
        adapter = self.adapters.get(provider)
        line = _Line(
            adapter=adapter,
            facts=facts,
            chunk_id=chunk_id,
            provider=provider,
            window=max(1, adapter.capabilities.window),
            overlap=min(max(1, adapter.capabilities.overlap), MAX_OVERLAP),
            tps=self.settings.provider(provider).tps,
            deadline=self.clock.monotonic() + self.settings.delivery.chunk_max_seconds,
        )
        ahead: Window | _Stop | None = None  # None: the next window is not prepared yet
        on_wire: deque[Window] = deque()  # oldest first
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
            if isinstance(ahead, Window):  # claimed but never sent: back to the queue untouched
                self._unclaim(list(ahead.claimed))
        finish_chunk(self.sessions, chunk_id, self.clock.now())

    def _fill_wire(
        self, line: _Line, on_wire: deque[Window], ahead: Window | _Stop | None, *, prepare: bool = True
    ) -> Window | _Stop | None:
        """Put windows on the wire while it has room; returns what is left ahead (a stop, or nothing).

        A window prepared earlier is checked again just before it goes: a pause or a cancel that came while
        it waited stops it (it returns to the queue untouched)."""
        while len(on_wire) < line.overlap:
            if isinstance(ahead, Window):
                ahead = self._still_cleared(line, ahead)
            elif ahead is None and prepare:
                ahead = self._prepare(line)
            if not isinstance(ahead, Window):
                break
            on_wire.append(self._put_on_wire(line, ahead))
            ahead = None
        return ahead

    def _prepare(self, line: _Line) -> Window | _Stop:
        """The next window, claimed and paced; or why there is none."""
        if self.stopping():
            return self._stop_for_shutdown(line)
        if self.clock.monotonic() > line.deadline:
            self._release(line.chunk_id, not_before=None)
            return _Stop("chunk_max_seconds reached; the rest goes back to the queue")
        stop = self._check_state(line.chunk_id) or self._fail_over(line)
        if stop is None and self.wait_for_links:
            stop = self._await_link(line)
        if stop is not None:
            return _Stop(stop)
        size = line.window
        if line.tps and not self.adapters.paces(line.provider):
            # One token per message, all taken before the window is claimed, so no row waits in sending
            # for the rate limit. (An SMPP adapter paces itself, one token per submit_sm as it writes them:
            # carriers meter PDUs, and a long SMS is several.)
            size = due_count(self.readers, line.chunk_id, line.window, self.clock.now())
            pacer = timed_pacer(line.provider, self._pacer(line.provider, line.tps))
            wanted = size
            while wanted > 0:
                wanted -= pacer(wanted)
        claimed, outbound = self._claim(line.chunk_id, size) if size else ({}, [])
        if not claimed:
            return _Stop(None)  # the chunk's due rows ran out
        return Window(claimed=claimed, outbound=outbound)

    def _await_link(self, line: _Line) -> str | None:
        """Wait for a reconnecting provider's link; returns why the chunk stops instead, if it must.

        Nothing is claimed meanwhile, so no attempt is spent; the chunk goes on within a second of the bind
        (the adapter records the outage in ``provider_health`` for whoever waits)."""
        adapter = line.adapter
        if not isinstance(adapter, Reconnecting) or adapter.wait_bound(0):
            return None
        log.warning("chunk %s: provider %s unreachable; waiting for it", line.chunk_id, line.provider)
        while not adapter.wait_bound(LINK_POLL_SECONDS):
            if self.stopping() or self.clock.monotonic() > line.deadline:
                self._release(line.chunk_id, not_before=None)
                return f"provider {line.provider} unreachable; the rest goes back to the queue"
            stop = self._check_state(line.chunk_id) or self._fail_over(line)
            if stop is not None:
                return stop
        log.info("chunk %s: provider %s reachable again", line.chunk_id, line.provider)
        return None

    def _judge(self, line: _Line, window: Window, results: list[SendResult], outcome: WindowOutcome) -> None:
        """Add a window's outcome to its account's rolling window (routing leaves out a tripped account)."""
        assert window.started_at is not None
        elapsed = (self.clock.now() - window.started_at).total_seconds()
        if line.tps:  # the time the rate limit made the window take is not the account's slowness
            elapsed -= sum(len(r.provider_ids) or 1 for r in results) / line.tps
        self.outcomes.add(
            line.provider,
            good=outcome.sent,
            bad=outcome.deferred + outcome.unknown,  # the account's trouble, not the number's
            latency=max(0.0, elapsed),
            now=self.clock.monotonic(),
        )

    def _fail_over(self, line: _Line) -> str | None:
        """When the chunk's account is down or tripped and its route has a healthy one: the chunk's queued
        messages move there (new chunks on its queue), the rest goes back to the tick, the chunk stops."""
        if self.router.route_of(line.provider) is None:
            return None
        with self.readers() as session:
            unhealthy = unhealthy_providers(session, self.settings, now=self.clock.now())
        if line.provider not in unhealthy:
            return None
        with self.sessions.begin() as session:
            moved = move_queued(
                session, line.chunk_id, line.provider, router=self.router, unhealthy=unhealthy
            )
            ids = [message_id for ids in moved.values() for message_id in ids]
            chunks = []
            if ids and self.enqueuer is not None:
                chunks = cut_chunks(session, settings=self.settings, clock=self.clock, only_ids=ids)
        if not moved:
            return None  # nowhere healthy to go: the chunk waits for its own account
        for chunk_id, queue in chunks:
            assert self.enqueuer is not None
            self.enqueuer.dispatch_chunk(chunk_id, queue=queue)
        self._release(line.chunk_id, not_before=None)
        where = ", ".join(f"{len(ids)} to {account}" for account, ids in sorted(moved.items()))
        log.warning(
            "chunk %s: provider %s is down or slow; queued messages moved: %s",
            line.chunk_id,
            line.provider,
            where,
        )
        return f"provider {line.provider} down or slow; moved {where}"

    def _pacer(self, provider: str, tps: float) -> Pacer:
        """The pacer of a provider's bucket, shared by every process sending through it."""
        return self._pacers(provider, tps)

    def _still_cleared(self, line: _Line, window: Window) -> Window | _Stop:
        stop = self._check_state(line.chunk_id)
        if stop is None and not self.stopping():
            return window
        self._unclaim(list(window.claimed))
        return self._stop_for_shutdown(line) if stop is None else _Stop(stop)

    def _stop_for_shutdown(self, line: _Line) -> _Stop:
        self._release(line.chunk_id, not_before=None)
        return _Stop("the worker is stopping; the rest goes back to the queue")

    def _put_on_wire(self, line: _Line, window: Window) -> Window:
        if not self.adapters.stamps(line.provider):
            # The adapter cannot say when each message's bytes go: the whole window counts as handed over,
            # except what was stopped since the claim (an opt-out): that is left out, unwritten.
            window.keep_only(mark_handed(self.sessions, list(window.claimed), clock=self.clock))
        window.started_at = self.clock.now()
        send: Callable[..., list[SendResult]] = line.adapter.send
        if line.adapter.capabilities.settles:
            send = functools.partial(
                send,
                on_settled=functools.partial(
                    self.recorder.early, line.facts, line.adapter.capabilities.receipts, window
                ),
            )
        if not window.outbound:  # everything was stopped: nothing to hand to the adapter
            window.future = Future()
            window.future.set_result([])
            return window
        # The sender thread writes its log lines with this chunk's fields (threads do not inherit them).
        window.future = self._sender().submit(contextvars.copy_context().run, send, window.outbound)
        return window

    def _sender(self) -> ThreadPoolExecutor:
        if self._executor is None:
            # Threads start only as windows overlap: an adapter that takes one call at a time uses one.
            self._executor = ThreadPoolExecutor(max_workers=MAX_OVERLAP, thread_name_prefix="sender")
        return self._executor

    def _record(
        self, line: _Line, window: Window, results: list[SendResult], summary: DispatchSummary
    ) -> str | None:
        """Record one window's results; returns why the chunk must stop, if it must."""
        if window.started_at is not None:
            seconds = (self.clock.now() - window.started_at).total_seconds()
            SEND_WINDOW_SECONDS.labels(line.facts.channel, line.provider).observe(seconds)
        outcome = self.recorder.window(line.facts, line.adapter.capabilities.receipts, window, results)
        if self.router.route_of(line.provider) is not None and window.started_at is not None:
            self._judge(line, window, results, outcome)
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
            # The bucket slows for every process sending through the account (an adapter that paces itself
            # tells its own pacer, per answer).
            if line.tps and not self.adapters.paces(line.provider):
                slow_down = getattr(self._pacer(line.provider, line.tps), "throttled", None)
                if slow_down is not None:
                    slow_down()
            self.clock.sleep(min(outcome.throttled_for, 5.0))  # the provider asked us to slow down
        return None

    def _claim(self, chunk_id: int, window: int) -> tuple[dict[int, Claimed], list[OutboundMessage]]:
        while True:
            rows = claim(self.sessions, chunk_id, window, self.clock.now())
            if not rows:
                return {}, []
            # Screened and rendered after the commit: the write lock is not held while the lists are read
            # and templates run (other processes claim and record meanwhile). Rows that cannot be rendered go
            # back to the queue as they were.
            try:
                sendable = screen_claimed(
                    self.sessions,
                    self.readers,
                    rows,
                    versions=self.versions,
                    settings=self.settings,
                    now=self.clock.now(),
                )
                if not sendable:
                    continue  # the consent policy stopped the whole window: the chunk goes on with the next
                # Read for a campaign version seen for the first time, and for the parts accepted before a retry.
                with self.readers() as session:
                    return compose(session, sendable, versions=self.versions, settings=self.settings)
            except BaseException:
                self._unclaim([row.id for row in rows])
                raise

    def _unclaim(self, ids: list[int]) -> None:
        unclaim(self.sessions, ids, clock=self.clock)

    def _release(self, chunk_id: int, *, not_before: datetime | None) -> None:
        release(self.sessions, chunk_id, not_before=not_before)

    def _check_state(self, chunk_id: int) -> str | None:
        return check_state(
            chunk_id, sessions=self.sessions, readers=self.readers, versions=self.versions, clock=self.clock
        )

    def close(self) -> None:
        """Stop the sender thread and close the adapters (the process is done sending)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self.adapters.close()
        for coalescer in self.hand_offs:  # after the adapters: the last receipts are asked for too
            coalescer.close()


def dispatcher_for(
    context: AppContext,
    *,
    hand_off: Callable[[str], None] | None = None,
    gateway: bool = False,
    enqueuer: Enqueuer | None = None,
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
            replies=ReplyRules.from_settings(context.settings),
        )

    pacers = pacer_factory(context.sessions, context.settings, clock=context.clock)  # one Redis client
    dispatcher = Dispatcher(
        sessions=context.sessions,
        settings=context.settings,
        clock=context.clock,
        adapters=AdapterPool(
            context.settings,
            inbound=inbound,
            pacer=lambda provider, tps: timed_pacer(provider, pacers(provider, tps)),
            health=lambda provider: health_recorder(context.sessions, provider, clock=context.clock),
            handing=lambda ids: mark_handed(context.sessions, ids, clock=context.clock),
            bind_in_background=gateway,
            clock=context.clock,
        ),
        match_receipts=hand_off is None,
        wait_for_links=gateway,
        enqueuer=enqueuer,
        pacers=pacers,
    )
    dispatcher.hand_offs = coalescers
    return dispatcher
