"""The SMS rate limit counts PDUs: one token per submit_sm (per SMS part), and no 100 ms slice of the clock
carries more than its share of ``tps``, however many processes share the bucket.

Speed itself is measured in ``benchmarks/rate_limit.py`` (two gateway processes against the sandbox SMSC);
here time is simulated, so the shares are checked exactly.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.clock import FrozenClock
from broadcaster.context import AppContext
from broadcaster.outbox.ratelimit import SLICE_SECONDS, SharedPacer, reserve
from tests.broadcaster.delivery.pipeline import PipelineFactory
from tests.broadcaster.delivery.test_sms_delivery import LONG_SMS, sms_only
from tests.broadcaster.delivery.workdir_files import citizens

EPOCH = datetime(2026, 11, 30, 1, 0, tzinfo=UTC).timestamp()


class CountingPacer:
    """Wraps a pacer and adds up the tokens it handed out."""

    def __init__(self, pacer: Callable[[int], int]) -> None:
        self.pacer = pacer
        self.granted = 0

    def __call__(self, wanted: int) -> int:
        granted = self.pacer(wanted)
        assert 0 < granted <= wanted
        self.granted += granted
        return granted


def test_each_sms_part_takes_one_token(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(sms={"tps": 5000})
    pipeline.add_contacts(citizens(12))
    campaign_id = sms_only(pipeline, text=LONG_SMS, unaccented=False)  # 3 UCS-2 parts each
    pipeline.start_engine()
    assert pipeline.adapters is not None
    counters: list[CountingPacer] = []
    real_factory = pipeline.adapters.pacer
    assert real_factory is not None

    def counting_factory(provider: str, tps: float) -> Callable[[int], int]:
        counters.append(CountingPacer(real_factory(provider, tps)))
        return counters[-1]

    pipeline.adapters.pacer = counting_factory

    run_id = pipeline.send(campaign_id)

    counts = pipeline.counts(run_id)  # receipts turn sent into delivered meanwhile: read once
    assert counts[("sms", "sent")] + counts[("sms", "delivered")] == 12
    assert len(pipeline.smsc.submits) == 36
    assert [c.granted for c in counters] == [36]  # one token per submit_sm, not one per message


class SimulatedTime:
    """A clock whose epoch seconds move only when someone sleeps (or the test says so); the test counts
    slices on the float seconds."""

    def __init__(self) -> None:
        self.seconds = EPOCH

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.seconds, UTC)

    def monotonic(self) -> float:
        return self.seconds

    def sleep(self, seconds: float) -> None:
        self.seconds += seconds


def test_two_senders_sharing_a_bucket_keep_every_100_ms_slice_to_its_share(context: AppContext) -> None:
    """Two senders (as two gateway processes would) take turns on one 200/s bucket, each asking for more
    than a slice's share at a time and writing 3-part messages: every 100 ms slice carries at most 20
    PDUs, and the rate over two seconds is 200/s."""
    rate, wanted = 200.0, 64
    sessions: sessionmaker[Session] = context.sessions
    clocks = [SimulatedTime(), SimulatedTime()]
    pacers = [SharedPacer(sessions, name="provider:sms_main", rate=rate, clock=c) for c in clocks]
    written: list[float] = []
    writers: Counter[int] = Counter()
    while min(c.seconds for c in clocks) < EPOCH + 2.0:
        turn = min(range(2), key=lambda i: clocks[i].seconds)  # whoever is free first writes next
        granted = pacers[turn].acquire(wanted)
        written.extend([clocks[turn].seconds] * granted)
        writers[turn] += granted
        clocks[turn].sleep(0.001)  # the write itself, and the answers
    written = [t for t in written if t < EPOCH + 2.0]

    # (Slot starts are epoch floats: a write exactly at one may read a few microseconds early.)
    slices = Counter(int((t - EPOCH) / SLICE_SECONDS + 1e-4) for t in written)
    assert max(slices.values()) <= rate * SLICE_SECONDS
    assert len(written) == 2.0 * rate
    assert min(writers.values()) > 0.4 * sum(writers.values())  # both sent, in turn


def test_a_slot_never_holds_more_than_its_share(context: AppContext) -> None:
    slots = [reserve(context.sessions, name="b", tokens=100, rate=200.0, now=EPOCH) for _ in range(10)]
    assert [s.tokens for s in slots] == [5] * 10  # 20 per 100 ms slice, in its first four 20 ms slots
    assert [round(s.start - EPOCH, 3) for s in slots] == [
        0,
        0.02,
        0.04,
        0.06,
        0.1,
        0.12,
        0.14,
        0.16,
        0.2,
        0.22,
    ]
    # A rate below one token per slot hands out single tokens, spaced by the rate.
    slow = [reserve(context.sessions, name="slow", tokens=5, rate=10.0, now=EPOCH) for _ in range(3)]
    assert [s.tokens for s in slow] == [1, 1, 1]
    assert [round(b.start - a.start, 3) for a, b in itertools.pairwise(slow)] == [0.1, 0.1]


def test_a_pacer_waits_for_its_slot_on_the_clock_it_is_given(context: AppContext) -> None:
    """At 10/s each 100 ms slice holds one token: the second acquire sleeps a slice on the given clock, which
    moves at once (no real wait)."""
    clock = FrozenClock(datetime.fromtimestamp(EPOCH, UTC))
    pacer = SharedPacer(context.sessions, name="provider:slow", rate=10.0, clock=clock)

    assert pacer.acquire(5) == 1
    assert pacer.acquire(5) == 1

    assert len(clock.slept) == 2
    assert clock.slept[1] == pytest.approx(SLICE_SECONDS, abs=1e-5)
    assert (clock.now().timestamp() - EPOCH) == pytest.approx(sum(clock.slept), abs=1e-5)
