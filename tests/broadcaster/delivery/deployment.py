"""The distributed deployment as an operator runs it (README, "Distributed"; docs/deployment.md): one
``broadcaster beat``, two ``broadcaster worker`` (planning and e-mail), ``broadcaster worker --gateway
sms_main`` and ``broadcaster worker --inbound`` (the receipts), each a CLI process of its own that the fault
tests kill with ``kill -9`` (the process and everything under it, as a crashed host or container would go) and
start again, as a service manager's restart policy does.

``ChunkWatch`` polls the chunks table while they run: how long an unfinished chunk stays owned by a process
that is dead (the acceptance asks that no chunk waits longer than ``[broker] visibility_timeout``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

from sqlalchemy import func, select

from broadcaster.db.models import Campaign, Chunk, Message
from broadcaster.observe.broker_queues import engine_queues, queue_depths
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.delivery.processes import Started, descendants, process_alive, start_cli
from tests.peers.polling import wait_until

MAIN_WORKERS = ("worker-1", "worker-2")
GATEWAY = "gateway"
INBOUND = "inbound"
ROLES = (*MAIN_WORKERS, GATEWAY, INBOUND)
WORKER_PROCESSES = 2  # pool processes of each main worker (--concurrency): the machine has two cores
ARGUMENTS = {
    "beat": ("beat",),
    GATEWAY: ("worker", "--gateway", "sms_main"),
    INBOUND: ("worker", "--inbound"),
    **{name: ("worker", "--concurrency", str(WORKER_PROCESSES)) for name in MAIN_WORKERS},
}


def all_dead(pids: set[int]) -> bool:
    return not any(process_alive(pid) for pid in pids)


class Deployment:
    """The deployment's processes; ``kill`` and ``restart`` them by role."""

    def __init__(self, pipeline: Pipeline, processes: Started) -> None:
        self.pipeline = pipeline
        self.processes = processes
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: dict[str, int] = {}
        self.exits: list[str] = []

    def start(self, *roles: str) -> None:
        for role in roles or ("beat", *ROLES):
            self.starts[role] = self.starts.get(role, 0) + 1
            self.running[role] = start_cli(
                self.pipeline,
                self.processes,
                *ARGUMENTS[role],
                login=ADMIN_LOGIN,
                log=f"{role}-{self.starts[role]}.log",
            )

    def tree(self, role: str) -> set[int]:
        root = self.running[role].pid
        return {root} | descendants(root)

    def pids(self, *roles: str) -> set[int]:
        return set().union(*(self.tree(role) for role in roles))

    def kill(self, *roles: str) -> set[int]:
        """``kill -9`` of each role's process and everything under it; returns the pids, all dead."""
        pids = self.pids(*roles)
        self.processes.strays |= pids
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        for role in roles:
            self.running[role].wait(timeout=30)
        wait_until(partial(all_dead, pids), timeout=30, what=f"the end of {', '.join(roles)}")
        return pids

    def restart_exited(self) -> None:
        """What a restart policy does: start again each process that exited by itself (noted in ``exits``)."""
        for role, process in list(self.running.items()):
            if process.poll() is not None:
                self.exits.append(f"{role} exited with code {process.returncode}")
                self.start(role)

    def wait(self, predicate: Callable[[], object], *, timeout: float, what: str) -> None:
        """``wait_until`` that starts again what exited meanwhile (the restart policy the README asks for) and
        says, when it gives up, what the processes last wrote."""

        def supervised() -> object:
            self.restart_exited()
            return predicate()

        try:
            wait_until(supervised, timeout=timeout, interval=0.5, what=what)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.state()}\n{self.logs()}") from None

    def state(self) -> str:
        """What a stall leaves behind: messages per channel, status and owner, unfinished chunks and their
        owners, the broker's queues."""
        context = self.pipeline.context
        with context.readers() as session:
            due_later = Message.not_before > func.now()
            messages = session.execute(
                select(
                    Message.channel,
                    Message.status,
                    Message.claimed_by.is_not(None),
                    Message.chunk_id.is_not(None),
                    due_later,
                    func.count(),
                ).group_by(
                    Message.channel,
                    Message.status,
                    Message.claimed_by.is_not(None),
                    Message.chunk_id.is_not(None),
                    due_later,
                )
            ).all()
            campaigns = session.execute(select(Campaign.id, Campaign.state, Campaign.paused_reason)).all()
            chunks = session.execute(
                select(Chunk.id, Chunk.channel, Chunk.queue, Chunk.worker, Chunk.created_at)
                .where(Chunk.finished_at.is_(None))
                .order_by(Chunk.id)
                .limit(40)
            ).all()
        try:
            depths = [
                depth.as_dict()
                for depth in queue_depths(context.settings, engine_queues(context.settings), timeout=5)
            ]
        except Exception as exc:  # a diagnostic: say why the broker could not be read
            depths = [{"error": repr(exc)}]
        alive = {role: process.poll() is None for role, process in self.running.items()}
        broker = context.settings.broker_url
        if broker.startswith("redis"):
            import redis

            client = redis.Redis.from_url(broker, socket_timeout=5)
            depths.append(
                {"unacked_mutex ttl": client.ttl("unacked_mutex"), "unacked": client.hlen("unacked")}
            )
            client.close()
        return (
            f"--- state\nmessages (channel, status, claimed, chunked, due later, count): {messages}\n"
            f"campaigns (id, state, paused because): {campaigns}\n"
            f"unfinished chunks (id, channel, queue, worker, created): {chunks}\n"
            f"queues: {depths}\nprocesses alive: {alive}"
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.pipeline.directory.glob("*.log"))
        )

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class ChunkWatch:
    """Polls the chunks table on a thread: per chunk, how long it stayed unfinished while owned by a dead
    process (from the first poll that saw it so to the first that did not)."""

    pipeline: Pipeline
    interval: ClassVar[float] = 0.25
    waits: dict[int, float] = field(default_factory=dict)
    _orphaned_since: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> ChunkWatch:
        self._thread = threading.Thread(target=self._run, name="chunk-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        with self.pipeline.context.readers() as session:
            owned = session.execute(
                select(Chunk.id, Chunk.worker).where(Chunk.finished_at.is_(None), Chunk.worker.is_not(None))
            ).all()
        now = time.monotonic()
        orphaned = {
            chunk for chunk, worker in owned if not process_alive(int(str(worker).rpartition(":")[2]))
        }
        for chunk in orphaned:
            self._orphaned_since.setdefault(chunk, now)
        for chunk in set(self._orphaned_since) - orphaned:
            self.waits[chunk] = now - self._orphaned_since.pop(chunk)

    def longest(self) -> float:
        """The longest wait seen, counting chunks still orphaned at this moment."""
        now = time.monotonic()
        still = [now - since for since in self._orphaned_since.values()]
        return max([*self.waits.values(), *still], default=0.0)
