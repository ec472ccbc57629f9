"""Running the engine: worker processes for the queues, and the tick loop.

Embedded mode (``send --wait``, ``run``): the CLI starts Celery workers as child processes on the SQLite
broker — one for planning and e-mail, one gateway per SMPP account (it binds at start and keeps reading
receipts), one that applies the receipts the gateways store — and runs the tick itself. Distributed mode runs the same workers with ``broadcaster worker`` and one
``broadcaster beat`` per installation.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from broadcaster.context import AppContext
from broadcaster.db.conflicts import one_line
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.lifeline import PARENT_PID_ENV
from broadcaster.outbox.handback import (
    HandBack,
    claimers_on_this_host,
    hand_back_worker,
    pid_of,
    process_alive,
    release_unstarted_chunks,
)
from broadcaster.outbox.queues import PLAN_QUEUE, inbound_queue, send_queue
from broadcaster.outbox.scheduler import TickReport
from broadcaster.settings import Settings
from broadcaster.tasks import CeleryEnqueuer, configure, engine_tick
from channels.registry import load_adapter_class

log = logging.getLogger(__name__)

BROKER_CLEANUP_EVERY = 60.0  # seconds between clean-ups of the broker's table
# A worker that exits by itself (not killed by a signal) more often than this is broken, not unlucky: the
# engine stops and says where its log is instead of restarting it forever.
MAX_WORKER_EXITS = 3


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    queues: tuple[str, ...]
    gateways: tuple[str, ...] = ()
    # An SMPP gateway owns its binds: one process (solo). Other senders scale with processes ≈ cores.
    pool: str = "solo"
    concurrency: int = 1


INBOUND_WORKER = "inbound"


def worker_specs(settings: Settings) -> list[WorkerSpec]:
    """One worker for planning and most providers, one gateway worker per account of an adapter that owns
    long-lived sessions (``capabilities.gateway``: SMPP), and one that applies what the adapters that hand
    over receipts and replies (``capabilities.inbound``) stored, so that receipts never wait behind sends."""
    main: list[str] = [PLAN_QUEUE]
    specs: list[WorkerSpec] = []
    inbound: list[str] = []
    for name, provider in sorted(settings.providers.items()):
        queues = (send_queue(provider.channel, name), send_queue(provider.channel, name, urgent=True))
        capabilities = load_adapter_class(provider.type).capabilities
        if capabilities.gateway:
            specs.append(WorkerSpec(name=f"gateway-{name}", queues=queues, gateways=(name,)))
        else:
            main.extend(queues)
        if capabilities.inbound:
            inbound.append(inbound_queue(name))
    processes = max(1, min(os.cpu_count() or 1, 4))
    if inbound:  # one applier per provider at a time (a lease): one process is enough
        specs.append(WorkerSpec(name=INBOUND_WORKER, queues=tuple(inbound)))
    return [WorkerSpec(name="main", queues=tuple(main), pool="prefork", concurrency=processes), *specs]


def worker_command(spec: WorkerSpec, *, loglevel: str = "WARNING", heartbeat: bool = False) -> list[str]:
    """The celery command of a worker; ``heartbeat``: it sends worker heartbeat events (Flower shows it online)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "broadcaster.tasks:app",
        "worker",
        "-P",
        spec.pool,
        "--concurrency",
        str(spec.concurrency),
        "-Q",
        ",".join(spec.queues),
        "-n",
        f"{spec.name}.{os.getpid()}@%h",
        *([] if heartbeat else ["--without-heartbeat"]),
        "--without-mingle",
        "--without-gossip",
        "-l",
        loglevel,
    ]


def worker_env(spec: WorkerSpec, config: Path, *, embedded: bool = True) -> dict[str, str]:
    """The environment of a worker; an ``embedded`` one follows this process and stops when it dies."""
    env = dict(os.environ)
    env["BROADCASTER_CONFIG"] = str(config)
    env.pop(PARENT_PID_ENV, None)
    if embedded:
        env[PARENT_PID_ENV] = str(os.getpid())
    if spec.gateways:
        env["BROADCASTER_GATEWAYS"] = ",".join(spec.gateways)
    return env


class EmbeddedEngine:
    """Workers as child processes plus the tick, for one machine. Use as a context manager."""

    def __init__(self, context: AppContext, *, config: Path, log_dir: Path) -> None:
        self.context = context
        self.config = config.resolve()
        self.log_dir = log_dir
        self.processes: list[tuple[WorkerSpec, subprocess.Popen[bytes]]] = []
        self.enqueuer = CeleryEnqueuer()
        self._cleaned_at = 0.0
        self._exits: Counter[str] = Counter()
        # One line per worker that died and what was handed back; shown by whoever drives the engine.
        self.notices: list[str] = []
        configure(context.settings)

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        specs = worker_specs(self.context.settings)
        self._release_lost_tasks([queue for spec in specs for queue in spec.queues])
        for spec in specs:
            self.processes.append((spec, self._spawn(spec)))

    def _release_lost_tasks(self, queues: list[str]) -> None:
        """The workers of an engine killed before this one may have fetched chunk tasks they never started
        (the SQLite broker forgets a task once fetched): those chunks go back to the tick, which cuts their
        rows into new ones. A task still in the broker then finds its chunk finished and does nothing."""
        with self.context.sessions.begin() as session:
            released = release_unstarted_chunks(session, queues, now=self.context.clock.now())
        if released:
            self._notice(_("%(n)s chunk(s) no worker started handed back to the queue") % {"n": released})

    def _spawn(self, spec: WorkerSpec) -> subprocess.Popen[bytes]:
        log_file = self._log_path(spec).open("ab")
        process = subprocess.Popen(  # noqa: S603  our interpreter running celery, argv built by us
            worker_command(spec),
            env=worker_env(spec, self.config),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        log_file.close()
        return process

    def _log_path(self, spec: WorkerSpec) -> Path:
        return self.log_dir / f"worker-{spec.name}.log"

    def check_workers(self) -> None:
        """Restart a worker process that died and hand back at once what it held, and what any dead pool
        child of this machine held (its rows and chunks, not after ``stuck_after_seconds``)."""
        for index, (spec, process) in enumerate(self.processes):
            code = process.poll()
            if code is None:
                continue
            handed = self._hand_back(f"{socket.gethostname()}:{process.pid}", queues=spec.queues)
            if code >= 0:  # it exited by itself: a broken configuration would only exit again
                self._exits[spec.name] += 1
                if self._exits[spec.name] > MAX_WORKER_EXITS:
                    raise UserError(
                        _(
                            "worker %(name)s keeps exiting (code %(code)s); see %(log)s for why, fix it, then "
                            "run the command again (%(handed)s)"
                        )
                        % {
                            "name": spec.name,
                            "code": code,
                            "log": self._log_path(spec),
                            "handed": handed.describe(),
                        }
                    )
            self.processes[index] = (spec, self._spawn(spec))
            self._notice(
                _("worker %(name)s %(ended)s; restarted it; %(handed)s")
                % {"name": spec.name, "ended": _how_it_ended(code), "handed": handed.describe()}
            )
        with self.context.readers() as session:
            claimers = claimers_on_this_host(session)
        own = {process.pid for _spec, process in self.processes}  # restarted above, once reaped
        for worker in sorted(claimers):
            pid = pid_of(worker)
            if pid is None or pid in own or process_alive(pid):
                continue
            handed = self._hand_back(worker)
            self._notice(
                _("worker process %(pid)s died; %(handed)s") % {"pid": pid, "handed": handed.describe()}
            )

    def _hand_back(self, worker: str, *, queues: tuple[str, ...] = ()) -> HandBack:
        with self.context.sessions.begin() as session:
            now = self.context.clock.now()
            handed = hand_back_worker(session, worker, now=now)
            if queues:  # chunks it had fetched but not started died with it too
                release_unstarted_chunks(session, queues, now=now)
        return handed

    def _notice(self, line: str) -> None:
        """A line for the person watching (in the run's language), and for the log."""
        log.warning("%s", line)
        self.notices.append(line)

    def take_notices(self) -> list[str]:
        notices, self.notices = self.notices, []
        return notices

    def tick(self) -> TickReport:
        self.check_workers()
        report = engine_tick(
            self.context.sessions,
            settings=self.context.settings,
            clock=self.context.clock,
            enqueuer=self.enqueuer,
        )
        if time.monotonic() - self._cleaned_at > BROKER_CLEANUP_EVERY:
            try:
                clean_broker(self.context.settings)
            except OperationalError as exc:  # housekeeping: a broker file busy past its timeout waits a tick
                log.warning("broker clean-up skipped, the next tick tries again: %s", one_line(exc))
            else:
                self._cleaned_at = time.monotonic()
        return report

    def stop(self, timeout: float = 30.0) -> None:
        for _spec, process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # Celery's warm shutdown: finish the current task
        deadline = time.monotonic() + timeout
        for _spec, process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def __enter__(self) -> EmbeddedEngine:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _how_it_ended(code: int) -> str:
    if code < 0:
        try:
            return _("was killed (%(signal)s)") % {"signal": signal.Signals(-code).name}
        except ValueError:
            return _("was killed (signal %(number)s)") % {"number": -code}
    return _("exited with code %(code)s") % {"code": code}


def clean_broker(settings: Settings) -> int:
    """kombu's SQL transport keeps acknowledged messages forever: delete the old ones."""
    url = settings.broker_url
    if not url.startswith("sqla+"):
        return 0
    engine = create_engine(url[len("sqla+") :], connect_args={"timeout": 30})
    # kombu stamps rows with naive local time (datetime.now()), so the cutoff is naive local time too.
    cutoff = datetime.now() - timedelta(seconds=settings.delivery.broker_cleanup_seconds)  # noqa: DTZ005
    try:
        with engine.begin() as connection:
            exists = connection.execute(
                text("SELECT name FROM sqlite_master WHERE name = 'kombu_message'")
            ).first()
            if exists is None:
                return 0
            result = connection.execute(
                text("DELETE FROM kombu_message WHERE visible = 0 AND timestamp < :cutoff"),
                {"cutoff": cutoff.isoformat(sep=" ")},
            )
            return int(result.rowcount or 0)
    finally:
        engine.dispose()
