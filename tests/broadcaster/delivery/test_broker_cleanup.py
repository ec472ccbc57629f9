"""The embedded engine's broker clean-up (``runtime.clean_broker``) is housekeeping: when the SQLite broker's
file stays busy past its timeout, the tick goes on and the next one tries again (a pool-child kill test once
failed on "database is locked" there)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from broadcaster import runtime
from broadcaster.runtime import EmbeddedEngine
from tests.broadcaster.delivery.pipeline import PipelineFactory


def test_a_busy_broker_file_skips_the_clean_up_for_a_tick(
    make_pipeline: PipelineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = make_pipeline()
    attempts: list[int] = []

    def locked(_settings: object) -> int:
        attempts.append(1)
        raise OperationalError("DELETE FROM kombu_message", {}, Exception("database is locked"))

    monkeypatch.setattr(runtime, "clean_broker", locked)
    engine = EmbeddedEngine(pipeline.context, config=pipeline.config, log_dir=pipeline.directory / "logs")

    engine.tick()  # no error: the tick's own work was done
    engine.tick()

    assert len(attempts) == 2  # not marked done: tried again at the next tick
