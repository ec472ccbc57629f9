"""One run of the engine on a prepared working directory, measured from the database and /proc.

Embedded: Celery workers run as child processes on the SQLite broker and the tick here. Distributed: the
working directory points at PostgreSQL and a broker server, and ``broadcaster worker``, ``worker --gateway``
and ``beat`` run as an operator starts them (``benchmarks.deployment``); this process only enqueues the plan and
watches. Either way the send rate is N over first claim to last ``sent_at``, the receipt lag is the last
receipt applied (``final_at``) minus the last hand-over (``handed_at``), and the peak RSS (VmHWM) and CPU time of
every engine process are read before the workers stop. The plan is enqueued once every engine process has
started and gone quiet, and CPU is counted from then: a campaign comes to processes that are already running,
and their start (imports, connections, binds) is no part of its cost in either deployment.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from benchmarks.deployment import (
    DistributedWorkers,
    Services,
    broker_process_pid,
    postgres_cpu_by_client,
)
from benchmarks.processes import cpu_seconds, descendants, vm_hwm_kib
from benchmarks.workdir import EDITOR, Prepared

if TYPE_CHECKING:
    from broadcaster.context import AppContext
    from broadcaster.settings import Settings

__all__ = ["EngineResult", "run_engine"]

POLL_SECONDS = 0.5
# Before the plan is enqueued the engine's processes have started and gone quiet (``settled``).
SETTLE_STEP_SECONDS = 0.5
SETTLE_TIMEOUT_SECONDS = 90.0
QUIET_CPU_SHARE = 0.4
# The progress is looked at no more than once per this many times what the last look took (~5 % of a core).
LOOK_EVERY_SPENT = 20


@dataclass
class EngineResult:
    planned: int = 0
    sent: int = 0  # reached sent or a later success state
    statuses: dict[str, int] = field(default_factory=dict)
    send_seconds: float = 0.0  # first claimed_at to last sent_at
    wall_seconds: float = 0.0  # plan enqueued to "nothing left to send"
    receipts_seconds: float | None = None  # plan enqueued to the last receipt (SMS)
    delivered: int = 0
    peak_rss_kib: dict[str, int] = field(default_factory=dict)  # process name -> VmHWM
    driver_peak_rss_kib: int = 0
    timed_out: bool = False
    audit_entries: dict[str, int] = field(default_factory=dict)  # delivery.* action -> entries written
    cpu_seconds: float = 0.0  # user + system CPU of every engine process (workers and pool children)
    deployment: str = "embedded"
    # CPU seconds per process family (a worker with its pool children; distributed: also "postgresql", the
    # server processes of the run's connections, and "broker", the broker server's CPU during the run).
    cpu_by_process: dict[str, float] = field(default_factory=dict)
    receipt_lag_seconds: float | None = None  # last final_at - last handed_at (SMS receipts)
    restarts: dict[str, int] = field(default_factory=dict)  # distributed processes that exited and restarted
    load_average: tuple[float, ...] = ()  # at the end of the run: how shared the machine was
    run_id: int = 0
    plan_seconds: float | None = None  # plan enqueued to the run's planned_at (sending overlaps it)
    # Plan enqueued to the last sent_at and to the last final_at (receipt), from the rows: exact, whatever
    # the watch's cadence (``wall_seconds`` is as late as its last look).
    last_sent_seconds: float | None = None
    last_final_seconds: float | None = None

    @property
    def rate(self) -> float:
        return self.sent / self.send_seconds if self.send_seconds > 0 else 0.0


def run_engine(
    prepared: Prepared,
    *,
    channel: str,
    timeout: float,
    receipt_timeout: float,
    wait_receipts: bool = True,
    services: Services | None = None,
    editor: str = EDITOR,
) -> EngineResult:
    """The embedded engine, or with ``services`` the distributed one's processes; ``editor`` starts the run."""
    from broadcaster.clock import SystemClock
    from broadcaster.context import AppContext
    from broadcaster.db.models import AuditEntry, CampaignRun, Message, User
    from broadcaster.outbox.sending import start_manual_run
    from broadcaster.runtime import EmbeddedEngine, worker_specs
    from broadcaster.tasks import CeleryEnqueuer, configure, declare_queues
    from broadcaster.vocabulary import MessageStatus

    clock = SystemClock()
    context = AppContext.load(prepared.config, clock=clock)
    result = EngineResult(deployment="embedded" if services is None else "distributed")
    try:
        with context.sessions.begin() as session:
            starter = session.scalar(select(User).where(User.login == editor))
            assert starter is not None
            run_id = start_manual_run(session, campaign_id=prepared.campaign_id, actor=starter, clock=clock)
        watch = partial(
            _watch,
            context,
            run_id,
            result,
            channel=channel,
            timeout=timeout,
            receipt_timeout=receipt_timeout,
            wait_receipts=wait_receipts,
        )
        if services is None:
            with EmbeddedEngine(
                context, config=prepared.config, log_dir=prepared.directory / "logs"
            ) as engine:

                def embedded_families() -> dict[str, list[int]]:
                    return {spec.name: [p.pid, *sorted(descendants(p.pid))] for spec, p in engine.processes}

                started = settled(embedded_families)
                driver_started = cpu_seconds("self")
                enqueued_at = clock.now()
                CeleryEnqueuer().plan_run(run_id)
                watch(engine.tick)
                # Before the workers stop: the peak of each engine process over the whole run.
                _read_processes(result, embedded_families(), since=started)
        else:
            configure(context.settings)
            declare_queues(context.settings, _queues(context.settings))
            gateways = [spec.gateways[0] for spec in worker_specs(context.settings) if spec.gateways]
            broker_pid = broker_process_pid(services)
            log_dir = prepared.directory / "logs"
            with DistributedWorkers(prepared.directory, gateways=gateways, log_dir=log_dir) as workers:
                started = settled(workers.pids)
                driver_started = cpu_seconds("self")
                postgres_started = postgres_cpu_by_client(services.database, workers.pids() | _driver())
                broker_before = cpu_seconds(broker_pid) if broker_pid else 0.0
                enqueued_at = clock.now()
                CeleryEnqueuer().plan_run(run_id)
                watch(workers.check_alive)
                result.restarts = dict(workers.restarts)
                families = workers.pids()
                _read_processes(result, families, since=started)
                postgres = postgres_cpu_by_client(services.database, families | _driver())
                result.cpu_by_process |= {
                    name: round(spent - postgres_started.get(name, 0.0), 2)
                    for name, spent in postgres.items()
                }
                if broker_pid:
                    result.cpu_by_process["broker"] = cpu_seconds(broker_pid) - broker_before
        result.load_average = tuple(round(figure, 2) for figure in os.getloadavg())
        result.driver_peak_rss_kib = vm_hwm_kib("self")
        # Embedded: the tick runs here.
        result.cpu_by_process["driver"] = round(cpu_seconds("self") - driver_started, 2)
        with context.readers() as session:
            result.statuses = {
                str(status.value): int(n)
                for status, n in session.execute(
                    select(Message.status, func.count())
                    .where(Message.run_id == run_id)
                    .group_by(Message.status)
                ).all()
            }
            first_claim, last_sent = session.execute(
                select(func.min(Message.claimed_at), func.max(Message.sent_at)).where(
                    Message.run_id == run_id
                )
            ).one()
            last_handed, last_final = session.execute(
                select(func.max(Message.handed_at), func.max(Message.final_at)).where(
                    Message.run_id == run_id
                )
            ).one()
            planned_at = session.scalar(select(CampaignRun.planned_at).where(CampaignRun.id == run_id))
            result.audit_entries = {
                action: int(n)
                for action, n in session.execute(
                    select(AuditEntry.action, func.count())
                    .where(AuditEntry.action.like("delivery.%"))
                    .group_by(AuditEntry.action)
                ).all()
            }
        result.run_id = run_id
        if planned_at is not None:
            result.plan_seconds = (planned_at - enqueued_at).total_seconds()
        if last_sent is not None:
            result.last_sent_seconds = (last_sent - enqueued_at).total_seconds()
        if last_final is not None:
            result.last_final_seconds = (last_final - enqueued_at).total_seconds()
        result.planned = sum(result.statuses.values())
        ok = (MessageStatus.SENT, MessageStatus.DELIVERED)
        result.sent = sum(result.statuses.get(str(s.value), 0) for s in ok)
        result.delivered = result.statuses.get(str(MessageStatus.DELIVERED.value), 0)
        if first_claim is not None and last_sent is not None:
            result.send_seconds = (last_sent - first_claim).total_seconds()
        if channel == "sms" and last_handed is not None and last_final is not None:
            result.receipt_lag_seconds = (last_final - last_handed).total_seconds()
    finally:
        context.close()
    return result


def _queues(settings: Settings) -> list[str]:
    from broadcaster.runtime import worker_specs

    return [queue for spec in worker_specs(settings) for queue in spec.queues]


def _watch(
    context: AppContext,
    run_id: int,
    result: EngineResult,
    tick: Callable[[], object],
    *,
    channel: str,
    timeout: float,
    receipt_timeout: float,
    wait_receipts: bool,
) -> None:
    """Until nothing is left to send (SMS: and every receipt is in, or ``receipt_timeout``): ``tick`` (the
    embedded engine's tick, or a check that the distributed processes live) every ``POLL_SECONDS`` and the
    progress as often (less often when a look is slow: ``LOOK_EVERY_SPENT``), as ``broadcaster send --wait``
    does."""
    from broadcaster.progress import campaign_paused, run_progress

    started = time.perf_counter()
    deadline = started + timeout
    receipts_deadline: float | None = None
    next_look = started
    while True:
        tick()
        if time.perf_counter() < next_look:
            time.sleep(POLL_SECONDS)  # the tick's cadence, not a synchronisation
            continue
        looked = time.perf_counter()
        progress = run_progress(context, run_id)
        paused = campaign_paused(context, run_id)
        if paused:
            raise RuntimeError(f"the benchmark campaign paused itself: {paused}")
        now = time.perf_counter()
        # PostgreSQL counts a run's messages on an index (SQLite reads tallies): at millions a look takes a
        # good part of a second, and every half second it would take a core from the run it measures.
        next_look = now + LOOK_EVERY_SPENT * (now - looked)
        if progress.finished and progress.planned:
            if not result.wall_seconds:
                result.wall_seconds = now - started
                receipts_deadline = now + receipt_timeout
            if channel != "sms" or not wait_receipts or not progress.pending_receipts:
                if channel == "sms" and wait_receipts:
                    result.receipts_seconds = now - started
                return
            if receipts_deadline is not None and now > receipts_deadline:
                return
        if now > deadline:
            result.timed_out = True
            return
        time.sleep(POLL_SECONDS)  # the tick's cadence (as `wait_for_run`), not a synchronisation


def _driver() -> dict[str, list[int]]:
    return {"driver": [os.getpid()]}


def _family_cpu(families: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in families.items()}


def settled(
    families: Callable[[], dict[str, list[int]]], *, timeout: float = SETTLE_TIMEOUT_SECONDS
) -> dict[str, float]:
    """Wait until the engine's processes have started (imports, connections, the gateway's bind) and gone
    quiet, as a deployment's long-running processes are when a campaign comes; returns each family's CPU
    seconds at that moment, which the run's figures leave out. Quiet: three successive half seconds in which
    all of them together used under ``QUIET_CPU_SHARE`` of one core (idle workers still poll the embedded
    broker and beat ticks) and about as much as in the half second before."""
    deadline = time.monotonic() + timeout
    before = _family_cpu(families())
    spent_before = float("inf")
    quiet = 0
    while quiet < 3:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the engine's processes did not go quiet within {timeout:.0f} s")
        time.sleep(SETTLE_STEP_SECONDS)  # sampling /proc over a window, not synchronisation
        now = _family_cpu(families())
        spent = sum(now.values()) - sum(before.get(name, 0.0) for name in now)
        steady = abs(spent - spent_before) <= QUIET_CPU_SHARE * SETTLE_STEP_SECONDS / 2
        quiet = quiet + 1 if steady and spent < QUIET_CPU_SHARE * SETTLE_STEP_SECONDS else 0
        before, spent_before = now, spent
    return before


def _read_processes(result: EngineResult, families: dict[str, list[int]], *, since: dict[str, float]) -> None:
    """Peak RSS of each process and CPU seconds of each family (a worker and its pool children) since the
    engine settled, numbered children rather than pids so that columns line up across runs."""
    for name, (pid, *children) in families.items():
        result.peak_rss_kib[name] = vm_hwm_kib(pid)
        family_cpu = cpu_seconds(pid)
        for number, child in enumerate(children, start=1):
            result.peak_rss_kib[f"{name}/child{number}"] = vm_hwm_kib(child)
            family_cpu += cpu_seconds(child)
        family_cpu -= since.get(name, 0.0)
        result.cpu_by_process[name] = round(family_cpu, 2)
        result.cpu_seconds += family_cpu
