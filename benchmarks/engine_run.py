"""One run of the embedded engine on a prepared working directory, measured from the database and /proc.

Celery workers run as child processes on the SQLite broker and the tick here; the send rate is N over first
claim to last ``sent_at``, and the peak RSS (VmHWM) of every engine process is read before the workers stop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import func, select

from benchmarks.processes import cpu_seconds, descendants, vm_hwm_kib
from benchmarks.workdir import EDITOR, Prepared

__all__ = ["EngineResult", "run_engine"]

POLL_SECONDS = 0.5


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

    @property
    def rate(self) -> float:
        return self.sent / self.send_seconds if self.send_seconds > 0 else 0.0


def run_engine(
    prepared: Prepared, *, channel: str, timeout: float, receipt_timeout: float, wait_receipts: bool = True
) -> EngineResult:
    from broadcaster.clock import SystemClock
    from broadcaster.context import AppContext
    from broadcaster.db.models import AuditEntry, Message, User
    from broadcaster.outbox.sending import start_manual_run
    from broadcaster.progress import campaign_paused, run_progress
    from broadcaster.runtime import EmbeddedEngine
    from broadcaster.tasks import CeleryEnqueuer
    from broadcaster.vocabulary import MessageStatus

    clock = SystemClock()
    context = AppContext.load(prepared.config, clock=clock)
    result = EngineResult()
    try:
        with context.sessions.begin() as session:
            editor = session.scalar(select(User).where(User.login == EDITOR))
            assert editor is not None
            run_id = start_manual_run(session, campaign_id=prepared.campaign_id, actor=editor, clock=clock)
        with EmbeddedEngine(context, config=prepared.config, log_dir=prepared.directory / "logs") as engine:
            started = time.perf_counter()
            CeleryEnqueuer().plan_run(run_id)
            deadline = started + timeout
            receipts_deadline: float | None = None
            while True:
                engine.tick()
                progress = run_progress(context, run_id)
                paused = campaign_paused(context, run_id)
                if paused:
                    raise RuntimeError(f"the benchmark campaign paused itself: {paused}")
                now = time.perf_counter()
                if progress.finished and progress.planned:
                    if not result.wall_seconds:
                        result.wall_seconds = now - started
                        receipts_deadline = now + receipt_timeout
                    if channel != "sms" or not wait_receipts or not progress.pending_receipts:
                        if channel == "sms" and wait_receipts:
                            result.receipts_seconds = now - started
                        break
                    if receipts_deadline is not None and now > receipts_deadline:
                        break
                if now > deadline:
                    result.timed_out = True
                    break
                time.sleep(POLL_SECONDS)  # the tick's cadence (as `wait_for_run`), not a synchronisation
            # VmHWM before the workers stop: the peak of each engine process over the whole run.
            for spec, process in engine.processes:
                result.peak_rss_kib[spec.name] = vm_hwm_kib(process.pid)
                # Numbered, not by pid, so the same column lines up across sizes (prefork pool children).
                result.cpu_seconds += cpu_seconds(process.pid)
                for number, child in enumerate(sorted(descendants(process.pid)), start=1):
                    result.peak_rss_kib[f"{spec.name}/child{number}"] = vm_hwm_kib(child)
                    result.cpu_seconds += cpu_seconds(child)
        result.driver_peak_rss_kib = vm_hwm_kib("self")
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
            result.audit_entries = {
                action: int(n)
                for action, n in session.execute(
                    select(AuditEntry.action, func.count())
                    .where(AuditEntry.action.like("delivery.%"))
                    .group_by(AuditEntry.action)
                ).all()
            }
        result.planned = sum(result.statuses.values())
        ok = (MessageStatus.SENT, MessageStatus.DELIVERED)
        result.sent = sum(result.statuses.get(str(s.value), 0) for s in ok)
        result.delivered = result.statuses.get(str(MessageStatus.DELIVERED.value), 0)
        if first_claim is not None and last_sent is not None:
            result.send_seconds = (last_sent - first_claim).total_seconds()
    finally:
        context.close()
    return result
