"""Sending one send() call's parts through the binds' PDU windows: write what the window plan allows, wait for
the answers, retry throttled parts, expire overdue ones, report settled messages early. Two calls at once
share the windows; the rules themselves are in ``window``."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import smpplib.exceptions

from channels.base import SendResult
from channels.clock import SYSTEM_CLOCK, Clock
from channels.masking import mask_address
from channels.sms import pdus
from channels.sms.smpp import window as plan
from channels.sms.smpp.bind import Answers, Bind, Pending, Reply
from channels.sms.smpp.client import LockedClient, WriteFailed
from channels.sms.smpp.statuses import THROTTLE_STATUSES
from channels.sms.smpp.window import Inflight, MessageJob, PartState, PartTask, ThrottlePolicy, Waiting

log = logging.getLogger(__name__)

# The longest a finished message waits for its result to be reported with others (Submitter._time_to_settle).
SETTLE_DELAY = 0.02

# Waits until PDUs may be written and says how many (at most the number asked; one token per submit_sm).
Pacer = Callable[[int], int]
# Told (and returns once it is recorded) which messages are about to have their first part written; returns
# those that may go (the others were stopped meanwhile: none of their parts is written).
HandingHandler = Callable[[Sequence[int]], Collection[int]]
# Told (and returns once they are recorded) the results of messages whose every part is answered.
SettledHandler = Callable[[Sequence[SendResult]], None]
# Forgets a bind's dead link (reason, the link generation that failed).
DropHandler = Callable[[Bind, str, int], None]


class Submitter:
    """Writes the parts of send() calls into the binds' windows and collects their answers."""

    def __init__(
        self,
        *,
        binds: Sequence[Bind],
        window: int,
        pdu_timeout: float,
        throttle: ThrottlePolicy,
        pacer: Pacer | None,
        on_handing: HandingHandler | None,
        submit_sm_writer: pdus.SubmitSmWriter,
        drop: DropHandler,
        result: Callable[[MessageJob], SendResult],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._binds = binds
        self.window = window
        self.pdu_timeout = pdu_timeout
        self.throttle = throttle
        # The account's rate limit, counted in submit_sm (carriers meter PDUs, not messages): every write,
        # throttled retries included, first takes its tokens. None: unlimited.
        self.pacer = pacer
        # The engine records which messages may be at the SMSC before their first PDU is written: after a
        # crash, the others of a window go back to the queue instead of being held as unknown.
        self.on_handing = on_handing
        self._submit_sm_writer = submit_sm_writer
        self._drop = drop
        self._result = result
        self._clock = clock  # PDU deadlines and throttled parts' retry times
        # Two send() calls at once share the binds' windows: the second one's parts fill each window as the
        # first one's drain. Checking a window for room and filling it is one step under this lock.
        self._filling = threading.Lock()
        # Senders whose parts wait for room: answers to anyone's parts wake them (see _wake_for_room).
        self._wanting_room: set[queue.Queue[list[Reply]]] = set()
        self._room_lock = threading.Lock()
        self._tokens = itertools.count(1)
        self._next_bind = itertools.cycle(range(len(binds)))

    def pick_bind(self) -> Bind | None:
        for _ in range(len(self._binds)):
            bind = self._binds[next(self._next_bind)]
            if bind.bound.is_set():
                return bind
        return None

    def hand_answers(self, answers: Answers) -> None:
        """A reader's answers of one read: to each sender at once, and wake the senders waiting for room."""
        for replies, batch in answers.values():
            replies.put(batch)
        if answers and self._wanting_room:
            self._wake_for_room(answers)

    def run_jobs(self, jobs: list[MessageJob], on_settled: SettledHandler | None) -> None:
        try:
            self._run_jobs_until_answered(jobs, on_settled)
        finally:
            # Whatever happened, no slot stays taken and every result is reported (a message settled early
            # is not reported twice).
            if on_settled is not None:
                self._settle([job for job in jobs if not job.settled], on_settled)
            for job in jobs:
                self._release(job)

    def _run_jobs_until_answered(self, jobs: list[MessageJob], on_settled: SettledHandler | None) -> None:
        for job in jobs:
            job.early = on_settled is not None
        replies: queue.Queue[list[Reply]] = queue.Queue()
        seq = itertools.count()
        for job in jobs:
            job.bind = self.pick_bind()
        waiting = plan.queue_parts(jobs, seq)
        # token -> what was written where; insertion order is write order, so also deadline order.
        inflight: dict[int, Inflight] = {}

        done: list[MessageJob] = []  # messages whose every part is answered (or never will be), not reported
        done_since: float | None = None  # when the first of them was seen done
        while waiting or inflight:
            # 1. Write every due part whose bind has room in its window: one write per bind.
            blocked = self._write_due(waiting, inflight, replies, done)

            # 2. Wait for the next answers, the next due retry, the next PDU deadline, or the time to report.
            if not inflight and not waiting:
                break
            now = self._clock.monotonic()
            if done and done_since is None and on_settled is not None:
                done_since = now
            wake = plan.next_wake(inflight, waiting, blocked=blocked, now=now)
            if done_since is not None:
                wake = min(wake, done_since + SETTLE_DELAY)
            try:
                batch = replies.get(timeout=max(0.0, min(wake - now, 0.5)))
            except queue.Empty:
                batch = []
            while True:
                for reply in batch:
                    if reply.kind != "lost" and reply.status in THROTTLE_STATUSES:
                        self._slow_down()
                    finished = plan.apply_reply(
                        reply, inflight, waiting, seq, now=self._clock.monotonic(), throttle=self.throttle
                    )
                    if finished is not None:
                        done.append(finished)
                try:
                    batch = replies.get_nowait()
                except queue.Empty:
                    break

            # 3. Expire PDUs whose answer is overdue: the SMSC may have them (OutcomeUnknown).
            for item in plan.overdue(inflight, self._clock.monotonic()):
                task = item.task
                with item.bind.lock:
                    pending = item.bind.pending.get(item.sequence)
                    if pending is not None and pending.token == item.token:
                        del item.bind.pending[item.sequence]
                finished_now = plan.time_out(task)
                log.warning(
                    "message %d part %d: no submit_sm_resp within %.1f s",
                    task.job.message.message_id,
                    task.part + 1,
                    self.pdu_timeout,
                    extra={"message_id": task.job.message.message_id},
                )
                if finished_now:
                    done.append(task.job)

            # 4. Record the results that are complete, which frees their window slots: in batches, as each is
            # one transaction of the engine's (see _time_to_settle).
            if on_settled is None:
                done.clear()  # no early reports: send() returns every result
                continue
            if done and done_since is None:
                done_since = self._clock.monotonic()
            if done_since is not None and self._time_to_settle(done, done_since, inflight):
                self._settle(done, on_settled)
                done.clear()
                done_since = None

    def _time_to_settle(
        self,
        done: Sequence[MessageJob],
        done_since: float,
        inflight: Mapping[int, Inflight],
    ) -> bool:
        """Report now when the finished messages hold half of the windows' slots, when nothing else of this
        call is in flight, or when the oldest has waited ``SETTLE_DELAY``. Reporting each answer as it comes
        made one transaction per seven or eight messages on a busy bind; the slots they hold stay counted, so
        at most a window is ever written and unrecorded (what a crash may leave unknown)."""
        held = sum(len(job.held_on) for job in done)
        return (
            held * 2 >= self.window * len(self._binds)
            or not inflight
            or self._clock.monotonic() - done_since >= SETTLE_DELAY
        )

    def _settle(self, jobs: Sequence[MessageJob], on_settled: SettledHandler) -> None:
        """Report finished messages' results (once each), then free the window slots they held."""
        jobs = [job for job in dict.fromkeys(jobs) if not job.settled]
        if not jobs:
            return
        try:
            on_settled([self._result(job) for job in jobs])
        except Exception:
            # Not recorded now: the engine records them from send()'s return value instead.
            log.exception("could not record the results of %d message(s) early", len(jobs))
        for job in jobs:
            job.settled = True
            self._release(job)

    def _release(self, job: MessageJob) -> None:
        """Free the window slots a message's answered parts held; wake senders waiting for room."""
        if not job.held_on:
            return
        for bind in job.held_on:
            with bind.lock:
                bind.settling -= 1
        job.held_on.clear()
        if self._wanting_room:
            self._wake_for_room({})

    def _write_due(
        self,
        waiting: Waiting,
        inflight: dict[int, Inflight],
        replies: queue.Queue[list[Reply]],
        done: list[MessageJob],
    ) -> bool:
        """Write the due parts that fit in their bind's window; True when some had to wait for room.
        Messages that this leaves with no part to wait for go to ``done``."""
        with self._filling:
            # Registered before the windows are measured, so an answer that frees room after that still
            # finds this sender to wake.
            with self._room_lock:
                self._wanting_room.add(replies)
            blocked = self._fill_windows(waiting, inflight, replies, done, budget=self._budget(waiting))
            if not blocked:
                with self._room_lock:
                    self._wanting_room.discard(replies)
            return blocked

    def _slow_down(self) -> None:
        """A throttling answer: a pacer whose bucket slows on them (``throttled``) is told."""
        throttled = getattr(self.pacer, "throttled", None)
        if throttled is not None:
            throttled()

    def _budget(self, waiting: Waiting) -> int | None:
        """How many PDUs the rate limit lets us write now (None: no limit). Asks the pacer only for what the
        windows have room for, so a reserved slot is not wasted on parts that could not go out."""
        if self.pacer is None:
            return None
        wanted = plan.wanted(waiting, self._clock.monotonic(), binds=self._binds, window=self.window)
        return self.pacer(wanted) if wanted > 0 else 0

    def _wake_for_room(self, answered: Mapping[int, Any]) -> None:
        """Answers freed window room: wake the senders waiting for it that got no answer of their own."""
        with self._room_lock:
            woken, self._wanting_room = self._wanting_room, set()
        for replies in woken:
            if id(replies) not in answered:
                replies.put([])

    def _fill_windows(
        self,
        waiting: Waiting,
        inflight: dict[int, Inflight],
        replies: queue.Queue[list[Reply]],
        done: list[MessageJob],
        *,
        budget: int | None = None,
    ) -> bool:
        """Write the parts the window plan hands to binds with room; True when some must wait."""
        fill = plan.plan_fill(
            waiting,
            self._clock.monotonic(),
            binds=self._binds,
            window=self.window,
            pick_bind=self.pick_bind,
            done=done,
            budget=budget,
        )
        for bind, tasks in fill.batches:
            for task, written in zip(tasks, self._write(bind, tasks, replies), strict=True):
                if written is None:
                    plan.give_up(task, PartState.UNWRITTEN, done)
                else:
                    task.job.part_state[task.part] = PartState.INFLIGHT
                    inflight[written.token] = written
        return fill.blocked

    def _record_handing(self, tasks: Sequence[PartTask]) -> list[bool] | None:
        """Tell ``on_handing`` which messages get their first part written now; per task, whether it may be
        written (a message ``on_handing`` did not let go is withheld, with all its parts). None when it could
        not record that: then nothing is written, as nothing unrecorded may reach the SMSC."""
        fresh = {id(task.job): task.job for task in tasks if not task.job.handed and not task.job.withheld}
        if self.on_handing is not None and fresh:
            try:
                may_go = set(self.on_handing([job.message.message_id for job in fresh.values()]))
            except Exception:
                log.exception("could not record %d message(s) as handed over; not writing them", len(fresh))
                return None
            for job in fresh.values():
                job.handed = job.message.message_id in may_go
                job.withheld = not job.handed
        return [not task.job.withheld for task in tasks]

    def _submit_sm(self, sequence: int, task: PartTask) -> bytes:
        job = task.job
        return self._submit_sm_writer.submit_sm(
            sequence,
            destination=job.destination,
            esm_class=job.split.esm_class,
            data_coding=job.split.data_coding,
            short_message=job.split.parts[task.part].short_message,
        )

    def _write(
        self, bind: Bind, tasks: list[PartTask], replies: queue.Queue[list[Reply]]
    ) -> list[Inflight | None]:
        """Build the parts' submit_sm and write them together; per part, what to wait for (None: not
        written, so it cannot have reached the SMSC: the link is down, or the message was withheld)."""
        with bind.lock:
            client, generation = bind.client, bind.generation
        if client is None:
            return [None] * len(tasks)
        sequences = [client.next_sequence() for _ in tasks]
        octets = [self._submit_sm(sequence, task) for sequence, task in zip(sequences, tasks, strict=True)]
        may_go = self._record_handing(tasks)  # the last step before the write
        if may_go is None:
            return [None] * len(tasks)
        # A withheld message's parts are not written (their sequence numbers stay unused).
        going = [index for index, go in enumerate(may_go) if go]
        written = self._write_octets(
            bind,
            client,
            generation,
            [tasks[i] for i in going],
            [sequences[i] for i in going],
            [octets[i] for i in going],
            replies,
        )
        result: list[Inflight | None] = [None] * len(tasks)
        for index, inflight in zip(going, written, strict=True):
            result[index] = inflight
        return result

    def _write_octets(
        self,
        bind: Bind,
        client: LockedClient,
        generation: int,
        tasks: list[PartTask],
        sequences: list[int],
        octets: list[bytes],
        replies: queue.Queue[list[Reply]],
    ) -> list[Inflight | None]:
        if not tasks:
            return []
        items = [
            Pending(token=next(self._tokens), replies=replies, job=task.job if task.job.early else None)
            for task in tasks
        ]
        with bind.lock:
            if bind.generation != generation:
                return [None] * len(tasks)  # the link changed under us: nothing was written on it
            for sequence, item in zip(sequences, items, strict=True):
                bind.pending[sequence] = item  # registered first: the answer may beat the write's return
            bind.peak_outstanding = max(bind.peak_outstanding, len(bind.pending))
        written = len(octets)
        try:
            client.send_octets("submit_sm", octets)
        except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError) as exc:
            # The PDUs wholly written before the break are at the SMSC (their answers may still come, or
            # the drop reports them lost); of the rest at most a fragment went out, which the SMSC cannot act on.
            written = exc.complete if isinstance(exc, WriteFailed) else 0
            with bind.lock:
                for sequence in sequences[written:]:
                    bind.pending.pop(sequence, None)
            self._drop(bind, f"write failed: {exc!r}", generation)
        deadline = self._clock.monotonic() + self.pdu_timeout
        if log.isEnabledFor(logging.DEBUG):
            for task, sequence in zip(tasks[:written], sequences, strict=False):
                log.debug(
                    "message %d part %d/%d -> %s (bind %d, seq %d)",
                    task.job.message.message_id,
                    task.part + 1,
                    len(task.job.part_state),
                    mask_address(task.job.message.address),
                    bind.index,
                    sequence,
                    extra={"message_id": task.job.message.message_id},
                )
        return [
            Inflight(token=item.token, task=task, bind=bind, sequence=sequence, deadline=deadline)
            if index < written
            else None
            for index, (task, sequence, item) in enumerate(zip(tasks, sequences, items, strict=True))
        ]
