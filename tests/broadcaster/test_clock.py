"""The engine's clocks: the system one reads the machine, the frozen one moves its calendar and its monotonic
time together when told to, and sleeps by moving them instead of waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broadcaster.clock import Clock, FrozenClock, SystemClock

START = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


def test_the_system_clock_gives_the_calendar_and_monotonic_time() -> None:
    clock: Clock = SystemClock()
    assert clock.now().tzinfo is not None
    assert clock.monotonic() <= clock.monotonic()


def test_a_frozen_clock_sleeps_by_moving_both_times() -> None:
    clock: Clock = FrozenClock(START)
    before = clock.monotonic()

    clock.sleep(90.0)

    assert clock.now() == START + timedelta(seconds=90)
    assert clock.monotonic() - before >= 90.0
    assert clock.monotonic() - before < 90.0 + 60.0  # no real minute went by: the sleep did not wait


def test_advance_and_set_move_monotonic_time_forward_only() -> None:
    clock = FrozenClock(START)
    before = clock.monotonic()
    clock.advance(timedelta(hours=1))
    clock.set(START)  # the calendar may go back; monotonic time never does
    assert clock.now() == START
    jumped = clock.monotonic() - before
    assert 3600.0 <= jumped < 3600.0 + 60.0
    clock.set(START + timedelta(hours=2))
    assert clock.monotonic() - before >= 3600.0 + 7200.0
    assert clock.slept == []


def test_a_frozen_clock_needs_an_aware_start() -> None:
    with pytest.raises(ValueError, match="aware"):
        FrozenClock(START.replace(tzinfo=None))
