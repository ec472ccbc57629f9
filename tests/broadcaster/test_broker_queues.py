"""Workers starting at one instant on a new SQLite broker: declaring their queues first never fails."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from broadcaster import tasks

QUEUES = ("sms.sms_main", "sms.sms_main.urgent")


def _declare(url: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    tasks.celery_config = lambda settings: {"broker_url": url}
    barrier.wait()  # every process creates the broker's tables and rows at once
    tasks.declare_queues(None, QUEUES)  # type: ignore[arg-type]


@pytest.mark.parametrize("round_", range(3))
def test_four_workers_declaring_at_once_on_a_new_sqlite_broker_all_start(tmp_path: Path, round_: int) -> None:
    url = f"sqla+sqlite:///{tmp_path / f'broker-{round_}.sqlite3'}"
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(4)
    processes = [context.Process(target=_declare, args=(url, barrier)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [process.exitcode for process in processes] == [0, 0, 0, 0]
