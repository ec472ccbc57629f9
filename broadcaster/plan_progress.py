"""How far a run's planning has come, for the progress line ``send --wait`` (and the demo) show while the
planner works: messages stored per second, and the time left from how far the planner's checkpoint (the last
contact id it stored a page for, docs/architecture.md) has come through the contacts' ids."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select

from broadcaster import i18n
from broadcaster.context import AppContext
from broadcaster.db.models import CampaignRun, Contact
from broadcaster.i18n import gettext as _
from broadcaster.vocabulary import RunStatus


@dataclass(frozen=True)
class PlanSample:
    at: float  # seconds, monotonic
    planned: int  # messages stored so far
    position: int  # the run's checkpoint


def grouped(value: float) -> str:
    """A whole number with the language's digit grouping (1.234.567 in Vietnamese)."""
    text = f"{value:,.0f}"
    return text.replace(",", ".") if i18n.current_language() == "vi" else text


def duration(seconds: float) -> str:
    """``2 min 05 s``, ``1 h 02 min`` or ``45 s``: short enough for a progress line."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return _("%(h)s h %(m)02d min") % {"h": hours, "m": minutes}
    if minutes:
        return _("%(m)s min %(s)02d s") % {"m": minutes, "s": secs}
    return _("%(s)s s") % {"s": secs}


class PlanWatch:
    """Samples a run while it is being planned; its rate counts from the first sample it took."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._first: PlanSample | None = None

    def note(self, context: AppContext, run_id: int, planned: int) -> str | None:
        """ "planning: 20.345 messages/s, about 2 min 05 s left" while the run is being planned (``planned``:
        the messages it has so far); None once it is not."""
        with context.readers() as session:
            run = session.get(CampaignRun, run_id)
            if run is None or run.status != RunStatus.PLANNING:
                return None
            position = run.plan_checkpoint or 0
            last = session.scalar(select(func.max(Contact.id))) or 0
        return self.line(PlanSample(at=self._clock(), planned=planned, position=position), last_id=last)

    def line(self, sample: PlanSample, *, last_id: int) -> str:
        """The planning line for ``sample``; ``last_id``: the highest contact id, where planning ends."""
        first = self._first
        if first is None:
            self._first = sample
            return _("planning")
        elapsed = sample.at - first.at
        if elapsed <= 0 or sample.planned <= first.planned:
            return _("planning")
        text = _("planning: %(rate)s messages/s") % {
            "rate": grouped((sample.planned - first.planned) / elapsed)
        }
        moved = sample.position - first.position
        if moved > 0 and last_id > sample.position:
            left = (last_id - sample.position) * elapsed / moved
            text += _(", about %(left)s left") % {"left": duration(left)}
        return text
