"""What happens to an approved campaign, from its page: schedule, send now, pause, resume, cancel.

Each calls the service the CLI command calls, with the same role action; ``send`` is ``broadcaster send``
without ``--wait``: the run is opened and handed to the engine's workers, which send it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from broadcaster.campaigns import workflow
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.outbox.sending import start_manual_run
from broadcaster.tasks import CeleryEnqueuer, configure
from broadcaster.web.auth import Viewer, context_of, requires
from broadcaster.web.ui.campaign_common import acting, done, refused

router = APIRouter()

ReasonField = Annotated[str, Form(max_length=500)]


def _back(campaign_id: str) -> str:
    return f"/campaigns/{campaign_id}"


def _change_state(
    request: Request,
    viewer: Viewer,
    campaign_id: str,
    service: Callable[..., object],
    reason: str | None,
    outcome: str,
) -> Response:
    """Schedule, pause, resume or cancel through ``workflow`` as the viewer; a refusal is shown on the page."""
    context = context_of(request)
    try:
        with acting(request, viewer) as (session, user):
            service(session, campaign_id=campaign_id, actor=user, clock=context.clock, reason=reason)
    except UserError as exc:
        return refused(request, exc, back=_back(campaign_id))
    return done(campaign_id, outcome)


@router.post("/campaigns/{campaign_id}/schedule")
def schedule(
    request: Request,
    campaign_id: str,
    viewer: Annotated[Viewer, Depends(requires("campaigns.schedule"))],
    reason: ReasonField = "",
) -> Response:
    return _change_state(request, viewer, campaign_id, workflow.schedule, reason.strip() or None, "scheduled")


@router.post("/campaigns/{campaign_id}/send")
def send(
    request: Request, campaign_id: str, viewer: Annotated[Viewer, Depends(requires("campaigns.send"))]
) -> Response:
    """One run now; committed before it is handed to the workers, who find it by its id."""
    context = context_of(request)
    try:
        with acting(request, viewer) as (session, user):
            run_id = start_manual_run(session, campaign_id=campaign_id, actor=user, clock=context.clock)
    except UserError as exc:
        return refused(request, exc, back=_back(campaign_id))
    configure(context.settings)
    CeleryEnqueuer().plan_run(run_id)
    return done(campaign_id, "sent")


@router.post("/campaigns/{campaign_id}/pause")
def pause(
    request: Request,
    campaign_id: str,
    viewer: Annotated[Viewer, Depends(requires("campaigns.pause"))],
    reason: ReasonField = "",
) -> Response:
    return _change_state(request, viewer, campaign_id, workflow.pause, reason.strip() or None, "paused")


@router.post("/campaigns/{campaign_id}/resume")
def resume(
    request: Request,
    campaign_id: str,
    viewer: Annotated[Viewer, Depends(requires("campaigns.resume"))],
    reason: ReasonField = "",
) -> Response:
    return _change_state(request, viewer, campaign_id, workflow.resume, reason.strip() or None, "resumed")


@router.post("/campaigns/{campaign_id}/cancel")
def cancel(
    request: Request,
    campaign_id: str,
    viewer: Annotated[Viewer, Depends(requires("campaigns.cancel"))],
    reason: ReasonField = "",
) -> Response:
    """Cancelling cannot be undone: the page asks why, and a blank reason is refused before anything changes."""
    if not reason.strip():
        return refused(
            request,
            UserError(_("Cancelling needs a reason (the field 'Reason for cancelling').")),
            back=_back(campaign_id),
        )
    return _change_state(request, viewer, campaign_id, workflow.cancel, reason.strip(), "cancelled")
