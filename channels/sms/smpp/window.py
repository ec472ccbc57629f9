"""The PDU window as pure logic: which parts of a send() call wait, which are written where, how throttled
parts are retried, when an unanswered PDU becomes unknown. Time is an argument (``now``, monotonic seconds):
nothing here reads a clock, sleeps or touches a socket.

A bind's window holds at most ``window`` slots: a written PDU waiting for its answer, or (with on_settled) an
answered part of a message whose result is not recorded yet. A part whose message already holds a slot of
the bind (an answered part, a throttled one waiting for its retry) takes that slot over."""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from channels.base import OutboundMessage
from channels.masking import mask_address
from channels.sms import receipts
from channels.sms.encoding import SplitMessage
from channels.sms.smpp.bind import Bind, Reply
from channels.sms.smpp.statuses import ESME_ROK, THROTTLE_STATUSES
from channels.sms.smpp_errors import status_name

log = logging.getLogger(__name__)


class PartState(StrEnum):
    """Where one part of a message stands."""

    NEW = "new"  # waiting to be written (first attempt or throttled retry)
    INFLIGHT = "inflight"  # written, its answer not in yet
    OK = "ok"  # accepted (now or by an earlier attempt)
    REFUSED = "refused"  # refused by the SMSC
    UNKNOWN = "unknown"  # written, but no answer came (timeout, or the link dropped after the write)
    UNWRITTEN = "unwritten"  # never written: no bind was up, or the write could not happen
    SKIPPED = "skipped"  # not written because another part of the message was already refused


_OPEN: frozenset[PartState] = frozenset({PartState.NEW, PartState.INFLIGHT})


@dataclass(frozen=True)
class ThrottlePolicy:
    """How often and how soon a throttled part is written again (ESME_RTHROTTLED, ESME_RMSGQFUL)."""

    retries: int
    backoff: float
    backoff_max: float

    def delay(self, attempt: int) -> float:
        """Seconds before the retry that follows the ``attempt``-th write."""
        return min(self.backoff * 2.0 ** (attempt - 1), self.backoff_max)


@dataclass(eq=False)
class MessageJob:
    index: int
    message: OutboundMessage
    destination: bytes  # destination_addr as written (pdus.address)
    split: SplitMessage
    part_ids: list[str | None]
    part_state: list[PartState]
    refusals: dict[int, int] = field(default_factory=dict)  # part number -> command_status
    bind: Bind | None = None
    handed: bool = False  # on_handing was told before its first part was written
    withheld: bool = False  # ... and did not let it go: none of its parts is written
    early: bool = False  # its result is reported through on_settled as soon as it is known
    settled: bool = False  # ... and it was
    held_on: list[Bind] = field(default_factory=list)  # a window slot per answered part, until settled

    def done(self) -> bool:
        return all(state not in _OPEN for state in self.part_state)


@dataclass(order=True)
class PartTask:
    not_before: float
    seq: int
    job: MessageJob = field(compare=False)
    part: int = field(compare=False)  # 0-based
    attempt: int = field(compare=False, default=1)


@dataclass(eq=False)
class Waiting:
    """Parts of one send() call waiting to be written: first attempts in message order, and throttled retries
    by when they are due. Due retries go first: their message holds a window slot that they take over."""

    fresh: list[PartTask] = field(default_factory=list)  # heap by seq (due at once)
    retries: list[PartTask] = field(default_factory=list)  # heap by not_before

    def __bool__(self) -> bool:
        return bool(self.fresh or self.retries)

    def push(self, task: PartTask) -> None:
        heapq.heappush(self.retries if task.attempt > 1 else self.fresh, task)

    def next_due(self) -> float:
        return min(queue[0].not_before for queue in (self.fresh, self.retries) if queue)

    def due(self, now: float) -> int:
        return len(self.fresh) + sum(1 for task in self.retries if task.not_before <= now)

    def taking_over(self, now: float) -> int:
        """Due parts that will take over a slot their message holds (need a token but no room). Of the first
        attempts only the next one is looked at: a message is cut between two writes only at its front."""
        tasks = [task for task in self.retries if task.not_before <= now and task.job.held_on]
        if self.fresh and self.fresh[0].job.held_on:
            tasks.append(self.fresh[0])
        per_job = Counter(task.job for task in tasks)
        return sum(min(count, len(job.held_on)) for job, count in per_job.items())

    def pop_retry(self, now: float) -> PartTask | None:
        return heapq.heappop(self.retries) if self.retries and self.retries[0].not_before <= now else None

    def pop_fresh(self) -> PartTask | None:
        return heapq.heappop(self.fresh) if self.fresh else None


@dataclass(frozen=True, slots=True)
class Inflight:
    token: int
    task: PartTask
    bind: Bind
    sequence: int
    deadline: float


def queue_parts(jobs: Sequence[MessageJob], seq: Iterator[int]) -> Waiting:
    """Every part still to be written, as first attempts in message order."""
    waiting = Waiting()
    for job in jobs:
        for part, state in enumerate(job.part_state):
            if state == PartState.NEW:
                waiting.push(PartTask(0.0, next(seq), job, part))
    return waiting


def wanted(waiting: Waiting, now: float, *, binds: Sequence[Bind], window: int) -> int:
    """How many PDUs could go out now: the due parts, at most what the bound windows have room for (parts
    that take over a slot their message holds need no room)."""
    due = waiting.due(now)
    room = sum(window - bind.in_use() for bind in binds if bind.bound.is_set())
    room += waiting.taking_over(now)
    return min(due, room)


def give_up(task: PartTask, state: PartState, done: list[MessageJob]) -> None:
    """A part that will not be written (SKIPPED, UNWRITTEN); its message may be finished by that."""
    task.job.part_state[task.part] = state
    if task.job.done():
        done.append(task.job)


@dataclass
class FillPlan:
    """What to write now, per bind (in order), and whether due parts had to wait for room or tokens."""

    batches: list[tuple[Bind, list[PartTask]]]
    blocked: bool


def plan_fill(
    waiting: Waiting,
    now: float,
    *,
    binds: Sequence[Bind],
    window: int,
    pick_bind: Callable[[], Bind | None],
    done: list[MessageJob],
    budget: int | None = None,
) -> FillPlan:
    """Hand the due parts to binds with room, at most ``budget`` of them; parts that must wait go back to
    ``waiting``, messages left with no part to wait for go to ``done``.

    A part whose message already holds a slot of the bind (an answered part, a throttled one waiting for
    its retry) takes that slot over: a message never waits for room it holds itself."""
    room: dict[int, int] = {}
    batches: dict[int, tuple[Bind, list[PartTask]]] = {}
    blocked: list[PartTask] = []

    def place(task: PartTask) -> bool:
        """Put one part in its bind's batch, or in ``blocked``; False when nothing more fits anywhere."""
        nonlocal budget
        job = task.job
        if job.refusals:
            give_up(task, PartState.SKIPPED, done)  # the message already failed: stop spending parts
            return True
        bind = job.bind if job.bind is not None and job.bind.bound.is_set() else pick_bind()
        if bind is None:
            give_up(task, PartState.UNWRITTEN, done)
            return True
        job.bind = bind
        if bind.index not in room:
            room[bind.index] = window - bind.in_use()
        if budget is not None and budget <= 0:
            blocked.append(task)  # the rate limit's slot is used up: the next one is asked for
            return False
        if bind in job.held_on:
            with bind.lock:
                job.held_on.remove(bind)
                bind.settling -= 1  # its pending PDU will hold the slot instead
        elif room[bind.index] <= 0:
            blocked.append(task)
            # Every window full: the rest waits for answers.
            return not (len(room) == len(binds) and all(r <= 0 for r in room.values()))
        else:
            room[bind.index] -= 1
        if budget is not None:
            budget -= 1
        batches.setdefault(bind.index, (bind, []))[1].append(task)
        return True

    # Every due retry is looked at (they are few, and one may take over its message's slot), then the
    # first attempts in order while there is room.
    while (retry := waiting.pop_retry(now)) is not None:
        if not place(retry) and budget is not None and budget <= 0:
            break
    while (budget is None or budget > 0) and (task := waiting.pop_fresh()) is not None:
        if not place(task):
            break
    for task in blocked:
        waiting.push(task)
    # Parts left for want of rate-limit tokens wait like parts left for want of room.
    starved = budget is not None and budget <= 0 and waiting.due(now) > 0
    return FillPlan(batches=list(batches.values()), blocked=bool(blocked) or starved)


def next_wake(inflight: dict[int, Inflight], waiting: Waiting, *, blocked: bool, now: float) -> float:
    """When the sender must look again: the next PDU deadline, or the next due retry (soon when parts wait
    for room), and at least every half second."""
    return min(
        next(iter(inflight.values())).deadline if inflight else now + 0.5,
        waiting.next_due() if waiting and not blocked else now + 0.05,
    )


def apply_reply(
    reply: Reply,
    inflight: dict[int, Inflight],
    waiting: Waiting,
    seq: Iterator[int],
    *,
    now: float,
    throttle: ThrottlePolicy,
) -> MessageJob | None:
    """Apply one answer; returns the message when every part of it is now answered."""
    entry = inflight.pop(reply.token, None)
    if entry is None:
        return None  # already expired or already answered
    job = entry.task.job
    apply_answer(reply, entry.task, waiting, seq, now=now, throttle=throttle)
    return job if job.done() else None


def apply_answer(
    reply: Reply,
    task: PartTask,
    waiting: Waiting,
    seq: Iterator[int],
    *,
    now: float,
    throttle: ThrottlePolicy,
) -> None:
    job = task.job
    if reply.kind == "lost":
        job.part_state[task.part] = PartState.UNKNOWN
        return
    if reply.status == ESME_ROK:
        job.part_state[task.part] = PartState.OK
        job.part_ids[task.part] = receipts.normalize_id(reply.provider_id) or ""
        return
    if reply.status in THROTTLE_STATUSES and task.attempt <= throttle.retries and not job.refusals:
        delay = throttle.delay(task.attempt)
        job.part_state[task.part] = PartState.NEW
        waiting.push(PartTask(now + delay, next(seq), job, task.part, task.attempt + 1))
        return
    job.part_state[task.part] = PartState.REFUSED
    job.refusals[task.part + 1] = reply.status
    log.info(
        "message %d part %d to %s refused: %s",
        job.message.message_id,
        task.part + 1,
        mask_address(job.message.address),
        status_name(reply.status),
        extra={"message_id": job.message.message_id},
    )


def overdue(inflight: dict[int, Inflight], now: float) -> list[Inflight]:
    """Take out the PDUs whose answer is overdue (``inflight`` is in write order, so in deadline order)."""
    expired: list[Inflight] = []
    while inflight:
        token, item = next(iter(inflight.items()))
        if item.deadline > now:
            break
        del inflight[token]
        expired.append(item)
    return expired


def time_out(task: PartTask) -> bool:
    """A part whose answer never came: the SMSC may have it (UNKNOWN). True when its message is done."""
    task.job.part_state[task.part] = PartState.UNKNOWN
    return task.job.done()
