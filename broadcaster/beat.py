"""The beat: the tick every ``[delivery] tick_seconds``, by exactly one process of an installation.

A beat ticks only while it holds the leader lease ``beat`` (``HeldLease``, broadcaster/lease.py). A second beat
waits, says so, and takes over when the first stops or dies: at once when that one ran on the same host, after
``[delivery] beat_lease_seconds`` otherwise. A tick that fails (a deadlock, the database out of reach) is one log
line with the error's class and first line, never its SQL parameters; the next tick tries again
(docs/architecture.md §3, "Exactly one beat").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from broadcaster.clock import local
from broadcaster.context import AppContext
from broadcaster.db.conflicts import one_line
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _
from broadcaster.lease import HeldLease
from broadcaster.outbox.queues import Enqueuer
from broadcaster.outbox.scheduler import TickReport
from broadcaster.tasks import engine_tick

log = logging.getLogger(__name__)

LEADER_LEASE = "beat"
# A waiting beat repeats that it waits this often (and says at once when it takes over).
WAIT_NOTICE_SECONDS = 60.0


def describe_tick(report: TickReport) -> str | None:
    """One readable line for a tick that did something (None when it had nothing to do)."""
    parts: list[str] = []
    if report.runs_created:
        parts.append(_("started run(s) %(runs)s") % {"runs": ", ".join(map(str, report.runs_created))})
    if report.runs_replanned:
        parts.append(
            _("run(s) %(runs)s asked of the workers again (planning had stalled)")
            % {"runs": ", ".join(map(str, report.runs_replanned))}
        )
    parts.extend(
        _("missed occurrence of %(campaign)s at %(at)s")
        % {"campaign": campaign, "at": f"{local(moment):%H:%M %d/%m/%Y}"}
        for campaign, moment in report.missed
    )
    for count, what in (
        (report.chunks, N_("%(n)s chunk(s) queued for sending")),
        (report.runs_completed, N_("%(n)s run(s) completed")),
        (report.inbound_processed, N_("%(n)s receipt(s) or bounce(s) applied")),
        (report.swept_sending, N_("%(n)s message(s) stuck in sending swept")),
        (report.swept_chunks, N_("%(n)s lost chunk(s) re-queued")),
        (report.retained, N_("%(n)s row(s) of personal data past retention.personal_data_days blanked")),
        (report.inbound_deleted, N_("%(n)s raw receipt(s) or bounce(s) past retention.inbound_days deleted")),
    ):
        if count:
            parts.append(_(what) % {"n": count})
    return "; ".join(parts) or None


def guarded_tick(tick: Callable[[], TickReport]) -> tuple[TickReport | None, str | None]:
    """Run one tick; a failure is logged in one line and returned as the line to show (report None).

    This is the loops' task boundary: whatever a tick raises, the next one runs (``beat`` and ``run``)."""
    try:
        report = tick()
    except Exception as exc:  # the loop's boundary: one line, and the next tick tries again
        log.error("tick failed: %s", one_line(exc))
        return None, _("tick failed (%(error)s); the next tick tries again") % {"error": one_line(exc)}
    return report, describe_tick(report)


class Beat:
    """One beat process's loop: wait for the leader lease, then tick until stopped (or until the lease is lost,
    then wait again). ``say`` gets the lines an operator reads: one per tick, and what the lease does."""

    def __init__(
        self,
        context: AppContext,
        *,
        enqueuer: Enqueuer,
        say: Callable[[str], None],
        poll_seconds: float = 1.0,
    ) -> None:
        self.context, self.enqueuer, self.say, self.poll_seconds = context, enqueuer, say, poll_seconds
        self.ticks = 0  # ticks that completed
        self._lost = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Tick while leading, until ``stop`` is set; the lease is left for the next beat on the way out."""
        ttl = timedelta(seconds=self.context.settings.delivery.beat_lease_seconds)
        while not stop.is_set():
            lease = HeldLease(
                self.context.sessions, LEADER_LEASE, clock=self.context.clock, ttl=ttl, on_lost=self._on_lost
            )
            try:
                if self._lead(lease, stop):
                    self._tick_while_leading(stop)
            finally:
                lease.release()

    def tick(self) -> str:
        """One guarded tick; the line that says what it did."""
        report, line = guarded_tick(
            lambda: engine_tick(
                self.context.sessions,
                settings=self.context.settings,
                clock=self.context.clock,
                enqueuer=self.enqueuer,
            )
        )
        if report is not None:
            self.ticks += 1
        return line or _("nothing to do")

    def _lead(self, lease: HeldLease, stop: threading.Event) -> bool:
        """Wait until this beat holds the leader lease; False when stopped first."""
        noticed: float | None = None
        while True:
            try:
                holder = lease.try_take()
            except SQLAlchemyError as exc:  # the database out of reach: wait for it like for another beat
                log.warning("beat: cannot take the leader lease: %s", one_line(exc))
                holder = _("unknown (the database is out of reach: %(error)s)") % {"error": one_line(exc)}
            if holder is None:
                break
            if noticed is None or time.monotonic() - noticed > WAIT_NOTICE_SECONDS:
                log.info("beat: another beat leads (%s); waiting", holder)
                self.say(
                    _("Another beat is ticking (%(holder)s); this one waits and takes over when it stops.")
                    % {"holder": holder}
                )
                noticed = time.monotonic()
            if stop.wait(self.poll_seconds):
                return False
        if noticed is not None:
            log.info("beat: the other beat stopped; leading now")
            self.say(_("The other beat stopped; this one ticks now."))
        self._lost.clear()
        return True

    def _tick_while_leading(self, stop: threading.Event) -> None:
        tick_seconds = self.context.settings.delivery.tick_seconds
        while not stop.is_set() and not self._lost.is_set():
            self.say(self.tick())
            stop.wait(tick_seconds)

    def _on_lost(self, holder: str) -> None:
        """Another beat took the lease (this one could not renew it for longer than its TTL): stop ticking."""
        log.error("beat: the leader lease was taken over by %s; waiting to lead again", holder)
        self.say(
            _("Another beat took over (%(holder)s): this one stops ticking and waits.") % {"holder": holder}
        )
        self._lost.set()
