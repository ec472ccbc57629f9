"""The planner's page writer: pages written in order on a thread of its own, the keys of the pages not yet
committed known to the planner, a failed write raised in the planner's thread, a cancelled run stopping it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from broadcaster.outbox.page_writer import PageWriter, PlannedPage

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def page(to: int, *keys: str) -> PlannedPage:
    return PlannedPage(rows=[{"idempotency_key": key} for key in keys], carriers={}, to=to, now=NOW)


def test_pages_are_written_in_order_and_their_keys_are_in_flight_until_committed() -> None:
    release = threading.Event()
    written: list[int] = []

    def write(planned: PlannedPage) -> bool:
        assert release.wait(10)
        written.append(planned.to)
        return True

    with PageWriter(write) as writer:
        writer.put(page(10, "run:1:sms:+84912000001"))
        writer.put(page(20, "run:1:sms:+84912000002"))
        assert writer.in_flight() == {"run:1:sms:+84912000001", "run:1:sms:+84912000002"}
        release.set()
    assert written == [10, 20]
    assert writer.in_flight() == frozenset()


def test_a_failed_write_is_raised_in_the_planners_thread_and_nothing_after_it_is_written() -> None:
    written: list[int] = []

    def write(planned: PlannedPage) -> bool:
        if planned.to == 20:
            raise RuntimeError("database is locked")
        written.append(planned.to)
        return True

    def plan_four_pages() -> None:
        with PageWriter(write) as writer:
            for to in (10, 20, 30, 40):
                writer.put(page(to, f"key-{to}"))

    with pytest.raises(RuntimeError, match="database is locked"):
        plan_four_pages()
    assert written == [10]


def test_a_cancelled_run_stops_the_writer() -> None:
    written: list[int] = []

    def write(planned: PlannedPage) -> bool:
        written.append(planned.to)
        return planned.to < 20  # the run was cancelled before the second page

    with PageWriter(write) as writer:
        for to in (10, 20, 30):
            writer.put(page(to, f"key-{to}"))
    assert writer.stopped
    assert written == [10, 20]
