"""Exactly one ``broadcaster beat`` ticks (issue 16): a second one says it waits, and takes over when the first
is killed; each prints a start banner with the database password masked, and one line per tick."""

from __future__ import annotations

import pytest

from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.delivery.pipeline import PipelineFactory
from tests.broadcaster.delivery.processes import Started, start_cli
from tests.peers.polling import wait_until

pytestmark = [pytest.mark.services, pytest.mark.slow]

PASSWORD = "mat-khau-bi-mat"  # PostgreSQL's trust authentication here ignores it; the banner must hide it
WAITS = "this one waits and takes over"
TAKES_OVER = "this one ticks now"
TICK_LINE = "nothing to do"


def with_password(url: str) -> str:
    user, _, rest = url.partition("@")
    return f"{user}:{PASSWORD}@{rest}"


def test_a_second_beat_waits_and_takes_over_when_the_first_is_killed(
    make_pipeline: PipelineFactory, postgres_url: str, processes: Started
) -> None:
    # A long lease: the second beat takes over because it sees the first one's process gone, not by expiry.
    pipeline = make_pipeline(
        database_url=with_password(postgres_url),
        delivery={"tick_seconds": 0.2, "beat_lease_seconds": 600.0},
    )
    logs = ("beat-1.log", "beat-2.log")

    def log_of(index: int) -> str:
        text = (pipeline.directory / logs[index]).read_text(encoding="utf-8", errors="replace")
        return " ".join(text.split())  # the console wraps its lines at 80 columns when not a terminal

    first_beat = start_cli(pipeline, processes, "beat", login=ADMIN_LOGIN, log=logs[0])
    wait_until(lambda: TICK_LINE in log_of(0), timeout=60, what="the first beat's ticks")
    second_beat = start_cli(pipeline, processes, "beat", login=ADMIN_LOGIN, log=logs[1])
    wait_until(lambda: WAITS in log_of(1), timeout=60, what="the second beat waiting")
    banner = log_of(1).partition("Ctrl-C stops.")[0]
    assert banner.startswith("Beat: the engine's tick every 0.2 s")
    assert "database postgresql://postgres:***@127.0.0.1" in banner
    assert "broker sqla+sqlite" in banner
    assert PASSWORD not in log_of(0) + log_of(1)
    assert TICK_LINE not in log_of(1)  # it waits: it does not tick
    assert first_beat.poll() is None

    first_beat.kill()
    first_beat.wait()
    wait_until(
        lambda: TAKES_OVER in log_of(1) and TICK_LINE in log_of(1),
        timeout=60,
        what="the second beat taking over and ticking",
    )
    assert second_beat.poll() is None
