"""The SMPP PDU window's rules without sockets or sleeps: time is the ``now`` the test passes. Throttled parts
are retried with back-off and then refused, overdue PDUs become unknown, window room is counted per bind (an
answered part of an unrecorded message keeps its slot, and its next part takes that slot over), the rate
limit's budget is respected, and part states map to the SendResult the engine records."""

from __future__ import annotations

import itertools
import queue

import pytest

from channels.base import OutboundMessage, SendOutcome
from channels.errors import ConnectionLost, OutcomeUnknown, PermanentError, Throttled
from channels.sms.encoding import split
from channels.sms.smpp.bind import Bind, Pending, Reply
from channels.sms.smpp.outcome import result
from channels.sms.smpp.statuses import ESME_RMSGQFUL, ESME_ROK, ESME_RTHROTTLED
from channels.sms.smpp.window import (
    FillPlan,
    Inflight,
    MessageJob,
    PartState,
    PartTask,
    ThrottlePolicy,
    Waiting,
    apply_reply,
    next_wake,
    overdue,
    plan_fill,
    queue_parts,
    time_out,
    wanted,
)

THROTTLE = ThrottlePolicy(retries=2, backoff=0.1, backoff_max=0.3)
ESME_RINVDSTADR = 0x0B  # a refusal that is not a throttle
LONG_TEXT = "x" * 400  # three GSM 7-bit parts (153 septets each)


def job(index: int = 0, *, text: str = "hi", reference: int = 7) -> MessageJob:
    parts = split(text, reference=reference)
    count = len(parts.parts)
    return MessageJob(
        index=index,
        message=OutboundMessage(message_id=100 + index, address="+84905000001", body=text),
        destination=b"84905000001",
        split=parts,
        part_ids=[None] * count,
        part_state=[PartState.NEW] * count,
    )


def bound(index: int = 0) -> Bind:
    bind = Bind(index=index)
    bind.bound.set()
    return bind


def written(task: PartTask, bind: Bind, token: int, *, deadline: float = 10.0) -> Inflight:
    task.job.part_state[task.part] = PartState.INFLIGHT
    return Inflight(token=token, task=task, bind=bind, sequence=token, deadline=deadline)


def answer(token: int, status: int = ESME_ROK, provider_id: str | None = "AB12") -> Reply:
    return Reply(token=token, kind="resp", status=status, provider_id=provider_id)


# -- answers ------------------------------------------------------------------------------------------------


def test_throttle_delay_doubles_and_is_capped() -> None:
    assert [THROTTLE.delay(attempt) for attempt in (1, 2, 3, 4)] == pytest.approx([0.1, 0.2, 0.3, 0.3])


def test_an_accepted_part_stores_its_normalised_id_and_finishes_the_message() -> None:
    message = job()
    task = PartTask(0.0, 0, message, 0)
    inflight = {1: written(task, bound(), 1)}

    finished = apply_reply(
        answer(1, provider_id=" AB12\x00"), inflight, Waiting(), itertools.count(), now=5.0, throttle=THROTTLE
    )

    assert finished is message
    assert message.part_state == [PartState.OK]
    assert message.part_ids == ["ab12"]
    assert inflight == {}


@pytest.mark.parametrize("status", [ESME_RTHROTTLED, ESME_RMSGQFUL])
def test_a_throttled_part_waits_for_its_back_off_then_is_due_again(status: int) -> None:
    message = job()
    task = PartTask(0.0, 0, message, 0)
    inflight = {1: written(task, bound(), 1)}
    waiting = Waiting()

    finished = apply_reply(
        answer(1, status), inflight, waiting, itertools.count(5), now=5.0, throttle=THROTTLE
    )

    assert finished is None  # the message still has a part to write
    assert message.part_state == [PartState.NEW]
    assert waiting.due(5.09) == 0
    assert waiting.pop_retry(5.09) is None
    assert waiting.next_due() == pytest.approx(5.1)
    retry = waiting.pop_retry(5.1)
    assert retry is not None
    assert (retry.part, retry.attempt, retry.seq) == (0, 2, 5)


def test_a_part_throttled_more_often_than_its_retries_is_refused() -> None:
    message = job()
    waiting = Waiting()
    seq = itertools.count()
    task = PartTask(0.0, next(seq), message, 0)
    now = 0.0
    for token in (1, 2, 3):  # the first write and two retries
        inflight = {token: written(task, bound(), token)}
        apply_reply(answer(token, ESME_RTHROTTLED), inflight, waiting, seq, now=now, throttle=THROTTLE)
        if token < 3:
            now = waiting.next_due()
            retry = waiting.pop_retry(now)
            assert retry is not None
            task = retry

    assert message.part_state == [PartState.REFUSED]
    assert message.refusals == {1: ESME_RTHROTTLED}
    assert not waiting


def test_a_throttled_part_of_a_message_already_refused_is_refused_too() -> None:
    message = job(text=LONG_TEXT)
    bind = bound()
    first, second = PartTask(0.0, 0, message, 0), PartTask(0.0, 1, message, 1)
    inflight = {1: written(first, bind, 1), 2: written(second, bind, 2)}
    waiting = Waiting()

    apply_reply(answer(1, ESME_RINVDSTADR), inflight, waiting, itertools.count(), now=0.0, throttle=THROTTLE)
    apply_reply(answer(2, ESME_RTHROTTLED), inflight, waiting, itertools.count(), now=0.0, throttle=THROTTLE)

    assert message.part_state[:2] == [PartState.REFUSED, PartState.REFUSED]
    assert message.refusals == {1: ESME_RINVDSTADR, 2: ESME_RTHROTTLED}
    assert not waiting


def test_a_part_lost_with_its_link_is_unknown() -> None:
    message = job()
    task = PartTask(0.0, 0, message, 0)
    inflight = {1: written(task, bound(), 1)}

    finished = apply_reply(
        Reply(token=1, kind="lost"), inflight, Waiting(), itertools.count(), now=0.0, throttle=THROTTLE
    )

    assert finished is message
    assert message.part_state == [PartState.UNKNOWN]


def test_an_answer_after_expiry_is_ignored() -> None:
    assert apply_reply(answer(9), {}, Waiting(), itertools.count(), now=0.0, throttle=THROTTLE) is None


# -- PDU timeouts -------------------------------------------------------------------------------------------


def test_only_pdus_past_their_deadline_expire_and_become_unknown() -> None:
    message = job(text=LONG_TEXT)
    bind = bound()
    tasks = [PartTask(0.0, n, message, n) for n in range(3)]
    inflight = {n + 1: written(task, bind, n + 1, deadline=10.0 + n) for n, task in enumerate(tasks)}

    expired = overdue(inflight, 11.0)

    assert [item.token for item in expired] == [1, 2]
    assert list(inflight) == [3]
    assert [time_out(item.task) for item in expired] == [False, False]
    assert message.part_state == [PartState.UNKNOWN, PartState.UNKNOWN, PartState.INFLIGHT]
    assert overdue(inflight, 11.99) == []
    [last] = overdue(inflight, 12.0)
    assert time_out(last.task) is True


def test_the_sender_wakes_for_the_next_deadline_or_due_retry() -> None:
    message = job()
    waiting = Waiting()
    waiting.push(PartTask(3.0, 0, message, 0, attempt=2))
    inflight = {1: written(PartTask(0.0, 1, message, 0), bound(), 1, deadline=2.5)}

    assert next_wake(inflight, waiting, blocked=False, now=2.0) == 2.5
    assert next_wake({}, waiting, blocked=False, now=2.0) == 2.5  # at least every half second
    assert next_wake({}, waiting, blocked=False, now=2.9) == 3.0
    assert next_wake({}, waiting, blocked=True, now=2.9) == pytest.approx(2.95)  # room may come any moment


# -- window room --------------------------------------------------------------------------------------------


def fill(
    waiting: Waiting, binds: list[Bind], *, window: int, budget: int | None = None, now: float = 0.0
) -> tuple[FillPlan, list[MessageJob]]:
    done: list[MessageJob] = []
    picks = itertools.cycle(binds)
    plan = plan_fill(
        waiting, now, binds=binds, window=window, pick_bind=lambda: next(picks), done=done, budget=budget
    )
    return plan, done


def test_a_full_window_leaves_the_rest_waiting_in_order() -> None:
    bind = bound()
    jobs = [job(n) for n in range(3)]
    waiting = queue_parts(jobs, itertools.count())

    plan, done = fill(waiting, [bind], window=2)

    [(target, tasks)] = plan.batches
    assert target is bind
    assert [task.job.index for task in tasks] == [0, 1]
    assert plan.blocked
    assert done == []
    left = waiting.pop_fresh()
    assert left is not None
    assert left.job is jobs[2]


def test_room_is_what_the_window_holds_minus_pending_and_settling_parts() -> None:
    bind = bound()
    bind.pending[1] = Pending(token=1, replies=queue.Queue())
    bind.settling = 1
    waiting = queue_parts([job(n) for n in range(3)], itertools.count())

    assert wanted(waiting, 0.0, binds=[bind], window=3) == 1
    plan, _ = fill(waiting, [bind], window=3)

    assert [len(tasks) for _, tasks in plan.batches] == [1]
    assert plan.blocked


def test_a_part_takes_over_the_slot_its_message_holds() -> None:
    """Part 1 was answered and holds its slot; the window is full, yet part 2 goes out in that slot."""
    bind = bound()
    message = job(text=LONG_TEXT)
    message.part_state[0] = PartState.OK
    message.bind = bind
    bind.pending[1] = Pending(token=1, replies=queue.Queue(), job=message)
    with bind.lock:
        bind.hold(bind.pending.pop(1))
    bind.pending[2] = Pending(token=2, replies=queue.Queue())  # someone else's part fills the window
    waiting = Waiting()
    waiting.push(PartTask(0.0, 0, message, 1))
    waiting.push(PartTask(0.0, 1, message, 2))

    assert bind.in_use() == 2
    assert wanted(waiting, 0.0, binds=[bind], window=2) == 1  # no room, but one slot to take over
    plan, _ = fill(waiting, [bind], window=2)

    [(_, tasks)] = plan.batches
    assert [task.part for task in tasks] == [1]
    assert bind.settling == 0
    assert message.held_on == []
    assert plan.blocked  # part 3 waits for room


def test_a_due_throttled_retry_goes_before_first_attempts() -> None:
    bind = bound()
    retried, fresh = job(0), job(1)
    waiting = Waiting()
    waiting.push(PartTask(0.0, 0, fresh, 0))
    waiting.push(PartTask(1.0, 1, retried, 0, attempt=2))

    plan, _ = fill(waiting, [bind], window=1, now=1.0)

    [(_, tasks)] = plan.batches
    assert [task.job for task in tasks] == [retried]


def test_the_rate_limit_budget_bounds_the_writes() -> None:
    bind = bound()
    waiting = queue_parts([job(n) for n in range(3)], itertools.count())

    plan, _ = fill(waiting, [bind], window=10, budget=2)

    assert [len(tasks) for _, tasks in plan.batches] == [2]
    assert plan.blocked  # starved of tokens: the rest waits like parts without room
    assert waiting.due(0.0) == 1


def test_parts_of_a_refused_message_are_skipped_and_unbound_parts_unwritten() -> None:
    refused, unbound = job(0, text=LONG_TEXT), job(1)
    refused.refusals[1] = ESME_RINVDSTADR
    refused.part_state[0] = PartState.REFUSED
    waiting = Waiting()
    waiting.push(PartTask(0.0, 0, refused, 1))
    waiting.push(PartTask(0.0, 1, refused, 2))
    waiting.push(PartTask(0.0, 2, unbound, 0))
    done: list[MessageJob] = []

    plan = plan_fill(waiting, 0.0, binds=[Bind(index=0)], window=4, pick_bind=lambda: None, done=done)

    assert plan.batches == []
    assert not plan.blocked
    assert refused.part_state == [PartState.REFUSED, PartState.SKIPPED, PartState.SKIPPED]
    assert unbound.part_state == [PartState.UNWRITTEN]
    assert done == [refused, unbound]


def test_binds_are_filled_in_turn_and_a_message_stays_on_its_bind() -> None:
    first, second = bound(0), bound(1)
    jobs = [job(0, text=LONG_TEXT), job(1)]
    waiting = queue_parts(jobs, itertools.count())

    plan, _ = fill(waiting, [first, second], window=8)

    assert [(bind.index, [(t.job.index, t.part) for t in tasks]) for bind, tasks in plan.batches] == [
        (0, [(0, 0), (0, 1), (0, 2)]),
        (1, [(1, 0)]),
    ]


# -- outcome ------------------------------------------------------------------------------------------------


def test_every_part_accepted_is_sent_with_the_ids_in_part_order() -> None:
    message = job(text=LONG_TEXT)
    message.part_state = [PartState.OK] * 3
    message.part_ids = ["a", "b", "c"]

    sent = result(message, host="smsc", port=2775, throttle_backoff_max=1.0)

    assert sent.outcome is SendOutcome.SENT
    assert sent.provider_ids == ("a", "b", "c")


def test_a_refused_part_fails_the_message_and_keeps_the_accepted_ones() -> None:
    message = job(text=LONG_TEXT, reference=42)
    message.part_state = [PartState.OK, PartState.REFUSED, PartState.UNKNOWN]
    message.part_ids = ["a", None, None]
    message.refusals = {2: ESME_RINVDSTADR}

    failed = result(message, host="smsc", port=2775, throttle_backoff_max=1.0)

    assert failed.outcome is SendOutcome.FAILED
    assert isinstance(failed.error, PermanentError)
    assert failed.accepted_parts == {1: "a"}
    assert failed.sms_reference == 42
    assert "part 2/3 refused" in str(failed.error.detail)


def test_a_refused_throttle_says_when_to_retry() -> None:
    message = job()
    message.part_state = [PartState.REFUSED]
    message.refusals = {1: ESME_RTHROTTLED}

    failed = result(message, host="smsc", port=2775, throttle_backoff_max=0.7)

    assert isinstance(failed.error, Throttled)
    assert failed.error.retry_after == 0.7
    assert failed.sms_reference is None  # nothing accepted: a retry may use a new reference


def test_an_unanswered_part_is_unknown_before_an_unwritten_one() -> None:
    message = job(text=LONG_TEXT)
    message.part_state = [PartState.UNWRITTEN, PartState.UNKNOWN, PartState.UNWRITTEN]

    assert isinstance(result(message, host="smsc", port=2775, throttle_backoff_max=1.0).error, OutcomeUnknown)
    message.part_state[1] = PartState.UNWRITTEN
    lost = result(message, host="smsc", port=2775, throttle_backoff_max=1.0)
    assert isinstance(lost.error, ConnectionLost)
    assert lost.error.detail is None  # nothing accepted: nothing to say about parts
