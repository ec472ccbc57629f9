"""The dashboard: every campaign at a glance with its last run's figures, and the live progress of a run
(JSON that ``app.js`` polls; without JavaScript the page shows the figures of the moment it was loaded)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcaster.db.models import Campaign, CampaignRun, CampaignVersion
from broadcaster.errors import NotFound
from broadcaster.i18n import gettext as _
from broadcaster.progress import run_progress
from broadcaster.status import run_counts, runs_message_counts
from broadcaster.vocabulary import RunStatus
from broadcaster.web.auth import Viewer, context_of, requires
from broadcaster.web.labels import label
from broadcaster.web.templating import render
from broadcaster.web.ui.campaign_common import utc

router = APIRouter()

# The figures the dashboard shows per channel, in this order (docs/web.md, "Campaign pages").
FIGURES = ("sent", "delivered", "failed")
_FAILED = frozenset({"temporary_failure", "permanent_failure", "technical_failure"})
_BUSY = frozenset({"queued", "sending"})
_RUNNING = (RunStatus.PLANNING.value, RunStatus.SENDING.value)


def figures(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """{channel: {sent, delivered, failed}} from a run's counts by status (failures of every kind added)."""
    return {
        channel: {
            "sent": per.get("sent", 0),
            "delivered": per.get("delivered", 0),
            "failed": sum(n for status, n in per.items() if status in _FAILED),
        }
        for channel, per in sorted(counts.items())
    }


def _row(data: dict[str, Any]) -> dict[str, Any]:
    last = data["runs"][-1] if data["runs"] else None
    run = None
    if last is not None:
        run = {
            "id": last["id"],
            "status": last["status"],
            "planned": sum(sum(per.values()) for per in last["messages"].values()),
            "done": sum(n for per in last["messages"].values() for s, n in per.items() if s not in _BUSY),
            "figures": figures(last["messages"]),
            "running": last["status"] in _RUNNING,
        }
    return {**data, "last_run": run}


def _overview(session: Session) -> list[dict[str, Any]]:
    """What the dashboard shows of each campaign (``campaign_status``'s id, title, state, approved version and
    its last run with counts), in four queries whatever the number of campaigns and messages: the last runs'
    counts come from the message tallies (``status.runs_message_counts``), not from the messages."""
    campaigns = list(session.scalars(select(Campaign).order_by(Campaign.id)))
    approved = {
        version_id: number
        for version_id, number in session.execute(
            select(CampaignVersion.id, CampaignVersion.number).where(
                CampaignVersion.id.in_([c.approved_version_id for c in campaigns if c.approved_version_id])
            )
        )
    }
    last_ids = select(func.max(CampaignRun.id)).group_by(CampaignRun.campaign_id)
    last = {
        run.campaign_id: run
        for run in session.scalars(select(CampaignRun).where(CampaignRun.id.in_(last_ids)))
    }
    counts = runs_message_counts(session, [run.id for run in last.values()])
    return [
        {
            "id": campaign.id,
            "title": campaign.title,
            "state": campaign.state.value,
            "approved_version": approved.get(campaign.approved_version_id)
            if campaign.approved_version_id
            else None,
            "runs": [{"id": run.id, "status": run.status.value, "messages": counts[run.id]}]
            if (run := last.get(campaign.id)) is not None
            else [],
        }
        for campaign in campaigns
    ]


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, viewer: Annotated[Viewer, Depends(requires("read"))]) -> HTMLResponse:
    context = context_of(request)
    with context.readers() as session:
        rows = [_row(data) for data in _overview(session)]
        next_at = {c.id: utc(c.next_occurrence_at) for c in session.scalars(select(Campaign))}
    return render(request, "dashboard.html", rows=rows, next_at=next_at, figure_names=FIGURES)


@router.get("/campaigns/{campaign_id}/runs/{run_id}/progress")
def progress(
    request: Request,
    campaign_id: str,
    run_id: int,
    viewer: Annotated[Viewer, Depends(requires("read"))],
) -> JSONResponse:
    """How far a run is: counts per channel and status, the dashboard's figures, the planned total, finished."""
    context = context_of(request)
    with context.readers() as session:
        run = session.get(CampaignRun, run_id)
        if run is None or run.campaign_id != campaign_id:
            return JSONResponse({"detail": _("No such run of this campaign.")}, status_code=404)
        counts = run_counts(session, run_id)
        status = run.status.value
    try:
        current = run_progress(context, run_id)
    except NotFound:
        return JSONResponse({"detail": _("No such run of this campaign.")}, status_code=404)
    return JSONResponse(
        {
            "run_id": run_id,
            "campaign_id": campaign_id,
            "counts": counts,
            "figures": figures(counts),
            "channel_labels": {channel: label(channel, "channel") for channel in counts},
            "planned": current.planned,
            "done": current.done,
            "pending_receipts": current.pending_receipts,
            "finished": current.finished,
            "status": status,
            "status_label": label(status, "run_status"),
        },
        headers={"Cache-Control": "no-store"},
    )
