"""``send --wait`` (broadcaster/progress.py ``wait_for_run``) ticks every interval but looks at the run's
progress only as often as the look's own cost allows: a slow count of a city-wide run does not take the
machine from the run it watches."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from rich.console import Console

from broadcaster import progress
from broadcaster.plan_progress import PlanWatch
from broadcaster.progress import LOOK_COST_SHARE, RunProgress, wait_for_run

INTERVAL = 0.5


class _Time:
    """The module's clock: sleeping moves it on, and so does each look, by what a look costs."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class _Engine:
    context: Any = None

    def __init__(self) -> None:
        self.ticks = 0

    def tick(self) -> None:
        self.ticks += 1

    def take_notices(self) -> list[str]:
        return []


@pytest.mark.parametrize(("look_seconds", "ticks_per_look"), [(0.01, 1), (1.0, 20 / INTERVAL)])
def test_the_run_is_looked_at_as_often_as_the_look_costs_allow(
    monkeypatch: pytest.MonkeyPatch, look_seconds: float, ticks_per_look: float
) -> None:
    clock = _Time()
    looks: list[float] = []

    def run_progress(_context: Any, _run_id: int) -> RunProgress:
        looks.append(clock.now)
        clock.now += look_seconds
        return RunProgress(planned=10, done=0, pending_receipts=0, finished=len(looks) == 5)

    monkeypatch.setattr(progress, "time", clock)
    monkeypatch.setattr(progress, "run_progress", run_progress)
    monkeypatch.setattr(progress, "campaign_paused", lambda *_: None)
    monkeypatch.setattr(progress, "provider_notes", lambda *_: [])
    monkeypatch.setattr(progress, "send_window_note", lambda *_: None)
    monkeypatch.setattr(PlanWatch, "note", lambda *_: None)
    engine = _Engine()

    wait_for_run(engine, 1, console=Console(quiet=True), receipt_timeout=60, interval=INTERVAL)  # type: ignore[arg-type]

    assert len(looks) == 5
    assert engine.ticks == 1 + 4 * ticks_per_look
    gaps = [later - earlier for earlier, later in pairwise(looks)]
    assert min(gaps) >= max(INTERVAL, LOOK_COST_SHARE * look_seconds)
