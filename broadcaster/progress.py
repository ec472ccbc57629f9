"""How far a run is, and watching it until it is done: the progress shown by ``send --wait`` and the demo
(the bar, and the notes on a paused campaign, a closed send window or an unreachable provider)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select

from broadcaster.campaigns.store import definition_of
from broadcaster.campaigns.workflow import pause_reason
from broadcaster.context import AppContext
from broadcaster.db.models import Campaign, CampaignRun, CampaignVersion, Message
from broadcaster.errors import NotFound
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _
from broadcaster.outbox.health import unreachable_notes
from broadcaster.plan_progress import PlanWatch
from broadcaster.runtime import EmbeddedEngine
from broadcaster.status import run_counts
from broadcaster.vocabulary import CampaignState, MessageStatus, RunStatus
from channels.base import Channel


@dataclass
class RunProgress:
    planned: int
    done: int  # sent or in a final state
    pending_receipts: int  # SMS sent, waiting for the carrier's receipt
    finished: bool  # the run has nothing left to send


def run_progress(context: AppContext, run_id: int) -> RunProgress:
    with context.readers() as session:
        run = session.get(CampaignRun, run_id)
        if run is None:
            raise NotFound(_("campaign run %(run)s does not exist") % {"run": run_id})
        by_channel = run_counts(session, run_id)  # kept by triggers on SQLite: cheap at any size
        counts: dict[str, int] = {}
        for per in by_channel.values():
            for status, count in per.items():
                counts[status] = counts.get(status, 0) + count
        waiting = by_channel.get(Channel.SMS, {}).get(MessageStatus.SENT, 0)
        planned = sum(counts.values())
        busy = counts.get(MessageStatus.QUEUED, 0) + counts.get(MessageStatus.SENDING, 0)
        finished = run.status in (
            RunStatus.COMPLETED,
            RunStatus.COMPLETED_WITH_HELD,
            RunStatus.CANCELLED,
        ) or (run.status == RunStatus.SENDING and busy == 0)
        return RunProgress(planned=planned, done=planned - busy, pending_receipts=waiting, finished=finished)


# The catalogue's words, not the C library's locale.
WEEKDAYS = (
    N_("Monday"),
    N_("Tuesday"),
    N_("Wednesday"),
    N_("Thursday"),
    N_("Friday"),
    N_("Saturday"),
    N_("Sunday"),
)


def send_window_note(context: AppContext, run_id: int) -> str | None:
    """When the run's campaign is outside its send window now: "outside the send window; first messages at
    07:30 Monday 30/11 (Asia/Ho_Chi_Minh)" (the window's own time zone). None inside it or without one."""
    with context.readers() as session:
        run = session.get(CampaignRun, run_id)
        version = session.get(CampaignVersion, run.version_id) if run is not None else None
        if version is None:
            return None
        schedule = definition_of(version).schedule
    if schedule is None or schedule.window is None:
        return None
    tz, now = ZoneInfo(schedule.timezone), context.clock.now()
    if schedule.window.contains(now, tz):
        return None
    opens = schedule.window.next_open(now, tz).astimezone(tz)
    when = f"{opens:%H:%M} {_(WEEKDAYS[opens.weekday()])} {opens:%d/%m}"
    return _("outside the send window; first messages at %(when)s (%(timezone)s)") % {
        "when": when,
        "timezone": schedule.timezone,
    }


def provider_notes(context: AppContext, run_id: int) -> list[str]:
    """Per unreachable provider that the run still waits for: "SMSC unreachable since 13:02, retrying in
    20 s" (from ``provider_health``, kept by the process that talks to the provider)."""
    with context.readers() as session:
        names = session.scalars(
            select(Message.provider)
            .where(
                Message.run_id == run_id,
                Message.status.in_([MessageStatus.QUEUED, MessageStatus.SENDING]),
            )
            .distinct()
        ).all()
        providers = {
            name: context.settings.providers[name].type
            for name in names
            if name in context.settings.providers
        }
        return unreachable_notes(session, providers, now=context.clock.now()) if providers else []


def campaign_paused(context: AppContext, run_id: int) -> str | None:
    with context.sessions() as session:
        run = session.get(CampaignRun, run_id)
        campaign = session.get(Campaign, run.campaign_id) if run else None
        if campaign is not None and campaign.state in (CampaignState.PAUSED, CampaignState.CANCELLED):
            return _("campaign %(campaign)s is %(state)s: %(reason)s") % {
                "campaign": campaign.id,
                "state": _(campaign.state.value),  # "paused", "cancelled": broadcaster/web/labels.py's words
                "reason": pause_reason(campaign) or _("no reason given"),
            }
    return None


# ``send --wait`` looks at the run's progress at most once per this many times the look took.
LOOK_COST_SHARE = 20


def wait_for_run(
    engine: EmbeddedEngine,
    run_id: int,
    *,
    console: Console,
    receipt_timeout: float,
    interval: float = 0.5,
) -> None:
    """Tick and show progress until the run has nothing left to send and receipts are in (or time out)."""
    context = engine.context
    with Progress(
        TextColumn(_("[bold]run %(run)s[/]") % {"run": "{task.fields[run]}"}),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("send", total=None, run=run_id, note=_("planning"))
        receipts_since: float | None = None
        planning = PlanWatch()
        next_look = 0.0
        while True:
            engine.tick()
            for line in engine.take_notices():  # a worker died: restarted, and what it held handed back
                console.print(f"[yellow]{line}[/]", highlight=False)  # in the run's language (runtime.py)
            if time.monotonic() < next_look:
                time.sleep(interval)
                continue
            looked_from = time.monotonic()
            current = run_progress(context, run_id)
            paused = campaign_paused(context, run_id)
            note = (
                _("%(n)s awaiting receipts") % {"n": current.pending_receipts}
                if current.pending_receipts
                else ""
            )
            # A provider that is down says so (and when it is tried again), and so does a closed send window,
            # instead of a bar that does not move.
            note = "; ".join(provider_notes(context, run_id)) or send_window_note(context, run_id) or note
            # While the planner works: the messages it stored so far, how fast, and how long it has left.
            planned_so_far = planning.note(context, run_id, current.planned)
            if planned_so_far is not None:
                progress.update(task, total=None, completed=current.planned, note=paused or planned_so_far)
            else:
                progress.update(
                    task, total=current.planned or None, completed=current.done, note=paused or note
                )
            if paused:
                console.print(f"[yellow]{paused}[/]")
                return
            if current.finished and current.planned:
                if not current.pending_receipts:
                    return
                receipts_since = receipts_since or time.monotonic()
                if time.monotonic() - receipts_since > receipt_timeout:
                    console.print(
                        _("[yellow]%(n)s SMS still without a receipt after %(seconds)s s.[/]")
                        % {"n": current.pending_receipts, "seconds": f"{receipt_timeout:.0f}"}
                    )
                    return
            # Counting a city-wide run's messages takes a while (its rows by status, millions of them): the tick
            # goes on every interval, the look only as often as costs a small share of a core.
            next_look = time.monotonic() + LOOK_COST_SHARE * (time.monotonic() - looked_from)
            time.sleep(interval)
