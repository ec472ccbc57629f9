"""Coalescer: a burst of requests becomes few calls on the coalescer's own thread, and none is left behind.

Timing is controlled from inside the action (events it waits on) and with a 60-second interval where a test
needs "still within the interval"; nothing here sleeps to synchronise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from broadcaster.coalesce import Coalescer
from tests.peers.polling import wait_until

LONG = 60.0  # an interval no test waits out: a call that comes before it ends was not timed by it
WAIT = 10.0  # upper bound for anything the coalescer's thread should do promptly


class GatedAction:
    """An action that records each call and, while ``gate`` is clear, blocks inside it."""

    def __init__(self, *, blocking: bool = False) -> None:
        self.threads: list[str] = []
        self.started = threading.Event()
        self.gate = threading.Event()
        if not blocking:
            self.gate.set()

    def __call__(self) -> None:
        self.threads.append(threading.current_thread().name)
        self.started.set()
        assert self.gate.wait(WAIT), "the test never released the action"

    @property
    def count(self) -> int:
        return len(self.threads)


@pytest.fixture
def coalescers() -> Iterator[Callable[..., Coalescer]]:
    """``make(action, interval=...)``: a started Coalescer, closed after the test if the test did not."""
    made: list[Coalescer] = []

    def make(action: Callable[[], None], *, interval: float) -> Coalescer:
        coalescer = Coalescer(action, interval=interval, name=f"test-coalescer-{len(made)}")
        made.append(coalescer)
        return coalescer

    yield make
    for coalescer in made:
        coalescer.close()


def test_a_request_runs_the_action_on_the_coalescer_thread(coalescers: Callable[..., Coalescer]) -> None:
    """request() returns at once and the action runs later on the thread named after the coalescer."""
    action = GatedAction()
    coalescer = coalescers(action, interval=0.0)

    coalescer.request()

    wait_until(lambda: coalescer.calls == 1, timeout=WAIT, what="the first call")
    assert action.threads == ["test-coalescer-0"]
    assert threading.current_thread().name not in action.threads


def test_requests_during_a_running_call_fold_into_exactly_one_more_call(
    coalescers: Callable[..., Coalescer],
) -> None:
    """Five requests made while the action is blocked produce one follow-up call, not five."""
    action = GatedAction(blocking=True)
    coalescer = coalescers(action, interval=0.0)
    coalescer.request()
    assert action.started.wait(WAIT)

    for _ in range(5):
        coalescer.request()
    action.gate.set()
    wait_until(lambda: coalescer.calls == 2, timeout=WAIT, what="the folded call")
    coalescer.close()  # joins the thread: nothing else can run after this

    assert coalescer.calls == 2
    assert action.count == 2
    assert not coalescer._thread.is_alive()


def test_requests_within_the_interval_wait_for_it_and_close_cuts_it_short(
    coalescers: Callable[..., Coalescer],
) -> None:
    """Requests in the interval after a call are not served early; close() ends the interval and serves them
    with one last call, long before the 60-second interval would have run out."""
    action = GatedAction()
    coalescer = coalescers(action, interval=LONG)
    coalescer.request()
    wait_until(lambda: coalescer.calls == 1, timeout=WAIT, what="the first call")

    for _ in range(3):
        coalescer.request()
    assert coalescer.calls == 1  # the interval holds them back
    started = time.monotonic()
    coalescer.close(timeout=WAIT)

    assert time.monotonic() - started < WAIT
    assert coalescer.calls == 2
    assert not coalescer._thread.is_alive()


def test_close_makes_no_call_when_every_request_was_served(coalescers: Callable[..., Coalescer]) -> None:
    """close() after all requests were served (even inside the interval) stops the thread without a call."""
    action = GatedAction()
    coalescer = coalescers(action, interval=LONG)
    coalescer.request()
    wait_until(lambda: coalescer.calls == 1, timeout=WAIT, what="the first call")

    coalescer.close(timeout=WAIT)

    assert coalescer.calls == 1
    assert not coalescer._thread.is_alive()


def test_close_of_an_idle_coalescer_never_calls(coalescers: Callable[..., Coalescer]) -> None:
    """A coalescer that was never asked for anything stops on close() without calling the action."""
    action = GatedAction()
    coalescer = coalescers(action, interval=LONG)

    coalescer.close(timeout=WAIT)

    assert action.count == 0
    assert not coalescer._thread.is_alive()


def test_close_during_a_call_still_serves_the_requests_made_during_it(
    coalescers: Callable[..., Coalescer],
) -> None:
    """close() while the action runs waits for it, then makes one last call for the request that came in."""
    action = GatedAction(blocking=True)
    coalescer = coalescers(action, interval=LONG)
    coalescer.request()
    assert action.started.wait(WAIT)
    coalescer.request()

    closer = threading.Thread(target=coalescer.close, kwargs={"timeout": WAIT})
    closer.start()
    wait_until(lambda: coalescer._closed.is_set(), timeout=WAIT, what="close() to start")
    action.gate.set()
    closer.join(WAIT)

    assert not closer.is_alive()
    assert coalescer.calls == 2
    assert not coalescer._thread.is_alive()


def test_a_failing_action_is_logged_and_the_thread_serves_later_requests(
    coalescers: Callable[..., Coalescer], caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in the action is logged with its traceback; the next request still gets a call."""
    attempts: list[int] = []

    def action() -> None:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            raise RuntimeError("broker unreachable")

    caplog.set_level(logging.ERROR, logger="broadcaster.coalesce")
    coalescer = coalescers(action, interval=0.0)
    coalescer.request()
    failure = wait_until(
        lambda: next((r for r in caplog.records if r.name == "broadcaster.coalesce"), None),
        timeout=WAIT,
        what="the logged failure",
    )
    assert failure.exc_info is not None
    assert isinstance(failure.exc_info[1], RuntimeError)
    assert "test-coalescer-0" in failure.getMessage()
    assert coalescer.calls == 0  # a failed call is not counted as served

    coalescer.request()
    wait_until(lambda: coalescer.calls == 1, timeout=WAIT, what="the call after the failure")

    assert attempts == [1, 2]
    assert coalescer._thread.is_alive()
