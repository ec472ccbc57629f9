"""Processes the crash tests start and kill: the process tree read from /proc, CLI commands in processes of
their own, and an embedded engine ticked by the test. Their fixtures (``processes``, ``engine_for``) are in
conftest.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broadcaster.context import AppContext
from broadcaster.progress import run_progress
from broadcaster.runtime import EmbeddedEngine
from tests.peers.polling import wait_until

if TYPE_CHECKING:
    from tests.broadcaster.delivery.pipeline import Pipeline

CLI = [sys.executable, "-c", "from broadcaster.cli import main; main()"]
WAITING = "waiting for it to stop before binding"


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[1])


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie is dead: nothing may reap an orphan here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def descendants(root: int) -> set[int]:
    """Every living process under ``root`` (children, grandchildren…)."""
    parents = {int(name): parent_of(int(name)) for name in os.listdir("/proc") if name.isdigit()}
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier and process_alive(pid)}
        found |= frontier
    return found


class Started(list[subprocess.Popen[bytes]]):
    """Processes a test starts, and ``strays``: pids under them that must not outlive the test."""

    strays: set[int]


def start_cli(
    pipeline: Pipeline, processes: Started, *args: str, login: str, log: str
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCASTER_")}
    env.update(BROADCASTER_CONFIG=str(pipeline.config), LOGNAME=login, USER=login)
    with (pipeline.directory / log).open("wb") as output:
        process = subprocess.Popen(  # noqa: S603  the project's own CLI
            [*CLI, *args], cwd=pipeline.directory, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    processes.append(process)
    return process


class Engine:
    """The embedded engine of a pipeline's working directory, ticked by the test while it waits."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.context = AppContext.load(pipeline.config)  # the system clock, like the workers
        self.engine = EmbeddedEngine(
            self.context, config=pipeline.config, log_dir=pipeline.directory / "logs"
        )
        self.notices: list[str] = []

    def wait(self, condition: Callable[[], Any], *, what: str, timeout: float = 90.0) -> Any:
        def ticked() -> Any:
            self.engine.tick()
            self.notices.extend(self.engine.take_notices())
            return condition()

        return wait_until(ticked, timeout=timeout, interval=0.1, what=what)

    def finish(self, run_id: int) -> None:
        self.wait(lambda: run_progress(self.context, run_id).finished, what=f"run {run_id} settled")
