"""The beat's loop (broadcaster/beat.py) and the conflict retry (broadcaster/db/conflicts.py): a failed tick is
one line with the error's class and first line, never the statement's parameters, and the next tick runs; a
transaction PostgreSQL cancels for a deadlock runs again; anything else is raised at once."""

from __future__ import annotations

import contextvars
import logging
import threading

import pytest
from sqlalchemy.exc import OperationalError

from broadcaster import beat
from broadcaster.context import AppContext
from broadcaster.db.conflicts import one_line, retrying_conflicts
from broadcaster.outbox.queues import RecordingEnqueuer
from broadcaster.outbox.scheduler import TickReport
from tests.peers.polling import wait_until

ADDRESSES = [f"+8490{n:07d}" for n in range(300)]  # what a bulk update's parameters hold


class DeadlockDetected(Exception):
    """Stands for psycopg's exception of that name: the driver's error with its SQLSTATE."""

    sqlstate = "40P01"


class UniqueViolation(Exception):
    sqlstate = "23505"


def database_error(orig: Exception) -> OperationalError:
    return OperationalError("UPDATE messages SET status=%(s)s WHERE address IN (…)", {"a": ADDRESSES}, orig)


def deadlock() -> OperationalError:
    return database_error(DeadlockDetected("deadlock detected\nDETAIL:  Process 12994 waits for ShareLock"))


def test_a_failed_tick_is_one_line_without_parameters(caplog: pytest.LogCaptureFixture) -> None:
    def failing() -> TickReport:
        raise deadlock()

    with caplog.at_level(logging.ERROR, logger="broadcaster.beat"):
        report, line = beat.guarded_tick(failing)

    assert report is None
    assert line == "tick failed (DeadlockDetected: deadlock detected); the next tick tries again"
    [record] = caplog.records
    assert record.getMessage() == "tick failed: DeadlockDetected: deadlock detected"
    assert ADDRESSES[0] not in record.getMessage()
    assert one_line(ValueError("")) == "ValueError"


def test_a_deadlocked_transaction_runs_again_and_other_errors_are_raised_at_once() -> None:
    calls: list[int] = []

    def twice_deadlocked() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise deadlock()
        return "done"

    assert retrying_conflicts(twice_deadlocked, what="test") == "done"
    assert len(calls) == 3

    def unique_violation() -> None:
        calls.append(1)
        raise database_error(UniqueViolation("duplicate key"))

    calls.clear()
    with pytest.raises(OperationalError):
        retrying_conflicts(unique_violation, what="test")
    assert len(calls) == 1

    def always_deadlocked() -> None:
        calls.append(1)
        raise deadlock()

    calls.clear()
    with pytest.raises(OperationalError):
        retrying_conflicts(always_deadlocked, what="test", attempts=3)
    assert len(calls) == 3


def test_the_beat_goes_on_after_a_failed_tick(context: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    ticks: list[int] = []

    def tick_failing_first(*_args: object, **_kwargs: object) -> TickReport:
        ticks.append(1)
        if len(ticks) == 1:
            raise deadlock()
        return TickReport()

    monkeypatch.setattr(beat, "engine_tick", tick_failing_first)
    context.settings.delivery.tick_seconds = 0.01
    lines: list[str] = []
    stop = threading.Event()
    running = beat.Beat(context, enqueuer=RecordingEnqueuer(), say=lines.append, poll_seconds=0.01)
    thread = threading.Thread(target=contextvars.copy_context().run, args=(running.run, stop))  # English
    thread.start()
    try:
        wait_until(lambda: running.ticks >= 2, what="two ticks after the failed one")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert lines[0] == "tick failed (DeadlockDetected: deadlock detected); the next tick tries again"
    assert lines[1:3] == ["nothing to do", "nothing to do"]


def test_a_second_beat_waits_while_the_first_leads(context: AppContext) -> None:
    said: dict[str, list[str]] = {"first": [], "second": []}
    context.settings.delivery.tick_seconds = 0.01
    stop_first, stop_second = threading.Event(), threading.Event()

    def started(name: str, stop: threading.Event) -> tuple[beat.Beat, threading.Thread]:
        one = beat.Beat(context, enqueuer=RecordingEnqueuer(), say=said[name].append, poll_seconds=0.01)
        thread = threading.Thread(target=contextvars.copy_context().run, args=(one.run, stop))
        thread.start()
        return one, thread

    first, first_thread = started("first", stop_first)
    wait_until(lambda: first.ticks, what="the first beat's tick")
    second, second_thread = started("second", stop_second)
    try:
        wait_until(lambda: said["second"], what="the second beat saying it waits")
        assert "this one waits and takes over when it stops" in said["second"][0]
        assert second.ticks == 0
        stop_first.set()  # a clean stop gives the lease up: the second takes over at once
        first_thread.join(10)
        wait_until(lambda: second.ticks, what="the second beat ticking")
    finally:
        stop_first.set()
        stop_second.set()
        for thread in (first_thread, second_thread):
            thread.join(10)
    assert "The other beat stopped; this one ticks now." in said["second"]
