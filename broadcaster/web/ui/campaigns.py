"""The campaign pages: the list, one campaign (its definition, file, versions, runs and the actions the
viewer's role may take) and the diff between two versions. Reads only; the actions post to
``campaign_review``, ``campaign_actions`` and ``campaign_edit``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from broadcaster import policies
from broadcaster.campaigns.diff import diff_versions
from broadcaster.campaigns.store import definition_of, get_campaign, latest_version
from broadcaster.db.models import Campaign
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.progress import send_window_note
from broadcaster.status import campaign_status
from broadcaster.web.auth import Viewer, context_of, requires
from broadcaster.web.templating import render
from broadcaster.web.ui.campaign_common import DONE, refused, utc
from broadcaster.web.ui.dashboard import figures

router = APIRouter()


@router.get("/campaigns", response_class=HTMLResponse)
def campaign_list(request: Request, viewer: Annotated[Viewer, Depends(requires("read"))]) -> HTMLResponse:
    """As ``campaigns list``: every campaign with its state, latest version and next occurrence."""
    context = context_of(request)
    rows: list[dict[str, Any]] = []
    with context.readers() as session:
        for campaign in session.scalars(select(Campaign).order_by(Campaign.id)):
            latest = campaign.versions[-1] if campaign.versions else None
            rows.append(
                {
                    "id": campaign.id,
                    "title": campaign.title,
                    "state": campaign.state.value,
                    "latest_version": latest.number if latest else None,
                    "latest_status": latest.status.value if latest else None,
                    "next_occurrence_at": utc(campaign.next_occurrence_at),
                }
            )
    return render(request, "campaigns/list.html", rows=rows)


def _actions(viewer: Viewer, state: str, latest_status: str | None, scheduled: bool) -> dict[str, bool]:
    """Which buttons the page shows: the role may do it and the state makes it plausible (the service still
    decides, and says why when it refuses)."""
    live = state not in ("cancelled", "completed")
    return {
        "load": viewer.may("campaigns.load") and state != "cancelled",
        "submit": viewer.may("campaigns.submit") and latest_status == "draft",
        "review": viewer.may("campaigns.approve") and latest_status == "submitted",
        "schedule": viewer.may("campaigns.schedule") and scheduled and state in ("approved", "scheduled"),
        "send": viewer.may("campaigns.send") and state in ("approved", "scheduled", "completed"),
        "pause": viewer.may("campaigns.pause") and live and state != "paused",
        "resume": viewer.may("campaigns.resume") and state == "paused",
        "cancel": viewer.may("campaigns.cancel") and live,
    }


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(
    request: Request,
    campaign_id: str,
    viewer: Annotated[Viewer, Depends(requires("read"))],
    done: str | None = None,
) -> HTMLResponse:
    """As ``status`` and the campaign file: what the campaign says, where it comes from, what happened."""
    context = context_of(request)
    with context.readers() as session:
        try:
            data = campaign_status(session, campaign_id)
            latest = latest_version(session, campaign_id)
        except UserError as exc:
            return refused(request, exc, back="/campaigns")
        campaign = get_campaign(session, campaign_id)
        definition = definition_of(latest)
        source = {"path": latest.source_path, "text": latest.source_text, "templates": dict(latest.templates)}
        threshold = policies.second_approver_threshold(session)
        next_at = utc(campaign.next_occurrence_at)
    for run in data["runs"]:
        run["figures"] = figures(run["messages"])
        # As `send` says: a run waiting for its send window to open says when the first messages go.
        running = run["status"] in ("planning", "sending")
        run["window_note"] = send_window_note(context, run["id"]) if running else None
    return render(
        request,
        "campaigns/detail.html",
        data=data,
        latest=latest_status_of(data),
        definition=definition,
        source=source,
        threshold=threshold,
        next_at=next_at,
        actions=_actions(
            viewer, data["state"], latest_status_of(data)["status"], definition.schedule is not None
        ),
        done=_(DONE[done]) if done in DONE else None,
    )


def latest_status_of(data: dict[str, Any]) -> dict[str, Any]:
    """The latest version's entry of ``campaign_status``."""
    latest: dict[str, Any] = data["versions"][-1]
    return latest


@router.get("/campaigns/{campaign_id}/diff", response_class=HTMLResponse)
def campaign_diff(
    request: Request,
    campaign_id: str,
    viewer: Annotated[Viewer, Depends(requires("read"))],
    old: Annotated[int | None, Query(alias="from", ge=1)] = None,
    new: Annotated[int | None, Query(alias="to", ge=1)] = None,
) -> HTMLResponse:
    """As ``campaigns diff``: the campaign file and each template that differs, line by line."""
    context = context_of(request)
    with context.readers() as session:
        try:
            latest = latest_version(session, campaign_id).number
            to_number = new or latest
            from_number = old or max(to_number - 1, 1)
            result = diff_versions(session, campaign_id, from_number, to_number)
        except UserError as exc:
            return refused(request, exc, back=f"/campaigns/{campaign_id}")
        numbers = list(range(1, latest + 1))
        data = result.as_dict()
        title = result.new.campaign.title
    files = [
        {**file, "lines": [(_line_kind(line), line) for line in file["diff"].splitlines()]}
        for file in data["files"]
    ]
    return render(
        request,
        "campaigns/diff.html",
        campaign_id=campaign_id,
        title=title,
        diff=data,
        files=files,
        numbers=numbers,
    )


def _line_kind(line: str) -> str:
    """The class of a diff line (coloured by app.css), like the CLI's styles."""
    if line.startswith(("+++", "---")):
        return "head"
    if line.startswith("@@"):
        return "hunk"
    return "added" if line.startswith("+") else "removed" if line.startswith("-") else "same"
