"""A version's preview, and the review done on it: submit, approve, reject (``campaign_review`` of the CLI).

The approve and reject forms carry the full content hash of the version the approver is looking at;
``workflow.approve`` refuses it when the version changed since. E-mail samples are shown in an
``<iframe sandbox>`` whose document comes from ``…/samples/{n}``, served with a CSP of its own that grants it
nothing (no scripts, no requests, no access to this site's pages)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from broadcaster.campaigns import workflow
from broadcaster.campaigns.preview import Preview, preview_version
from broadcaster.campaigns.store import get_campaign, get_version
from broadcaster.errors import UserError
from broadcaster.masking import mask_address, mask_name, must_mask
from broadcaster.web.auth import Viewer, context_of, requires
from broadcaster.web.templating import render
from broadcaster.web.ui.campaign_common import acting, done, refused

router = APIRouter()

SAMPLES = 3
# The sample document may show its own inline styles and embedded images, nothing else (docs/web.md).
SAMPLE_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _preview(
    request: Request, viewer: Viewer, campaign_id: str, number: int
) -> tuple[Preview, dict[str, Any]]:
    context = context_of(request)
    with acting(request, viewer, write=False) as (session, user):
        campaign = get_campaign(session, campaign_id)
        version = get_version(session, campaign_id, number)
        result = preview_version(session, version, context.settings, now=context.clock.now(), samples=SAMPLES)
        masked = must_mask(user, unmasked=False)
        facts = {
            "title": campaign.title,
            "submitted_by": version.submitted_by,
            "required_approvals": version.required_approvals,
            "approvals": [a.user_login for a in version.approvals if a.decision.value == "approve"],
        }
    if masked:  # auditors and admins see the samples' addresses and names masked, as the CLI's listings do
        for item in result.channels:
            for sample in item.samples:
                sample["to"] = mask_address(sample["to"])
                sample["name"] = mask_name(sample["name"])
    return result, facts


@router.get("/campaigns/{campaign_id}/versions/{number}/preview", response_class=HTMLResponse)
def preview_page(
    request: Request, campaign_id: str, number: int, viewer: Annotated[Viewer, Depends(requires("read"))]
) -> HTMLResponse:
    """As ``campaigns preview``, with the review's buttons for the roles that may press them."""
    try:
        result, facts = _preview(request, viewer, campaign_id, number)
    except UserError as exc:
        return refused(request, exc, back=f"/campaigns/{campaign_id}")
    return render(
        request,
        "campaigns/preview.html",
        preview=result,
        facts=facts,
        may_submit=viewer.may("campaigns.submit") and result.status == "draft",
        may_decide=viewer.may("campaigns.approve") and result.status == "submitted",
    )


@router.get("/campaigns/{campaign_id}/versions/{number}/samples/{index}")
def email_sample(
    request: Request,
    campaign_id: str,
    number: int,
    index: int,
    viewer: Annotated[Viewer, Depends(requires("read"))],
) -> Response:
    """The HTML part of e-mail sample ``index``, for the preview's sandboxed frame only."""
    headers = {"Content-Security-Policy": SAMPLE_POLICY, "Cache-Control": "no-store"}
    try:
        result, _facts = _preview(request, viewer, campaign_id, number)
    except UserError:
        return Response(status_code=404, headers=headers)
    mails = [item for item in result.channels if item.channel == "email"]
    samples = mails[0].samples if mails else []
    html = samples[index]["html"] if 0 <= index < len(samples) else None
    if not html:
        return Response(status_code=404, headers=headers)
    return HTMLResponse(html, headers=headers)


@router.post("/campaigns/{campaign_id}/submit")
def submit(
    request: Request,
    campaign_id: str,
    viewer: Annotated[Viewer, Depends(requires("campaigns.submit"))],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    context = context_of(request)
    try:
        with acting(request, viewer) as (session, user):
            version = workflow.submit(
                session,
                campaign_id=campaign_id,
                actor=user,
                settings=context.settings,
                clock=context.clock,
                reason=reason.strip() or None,
            )
            reached = version.audience_size
    except UserError as exc:
        return refused(request, exc, back=f"/campaigns/{campaign_id}")
    # As the CLI warns: a version for nobody is legal, but almost always a mistake in the audience.
    return done(campaign_id, "submitted" if reached else "submitted_to_nobody")


@router.post("/campaigns/{campaign_id}/versions/{number}/approve")
def approve(
    request: Request,
    campaign_id: str,
    number: int,
    viewer: Annotated[Viewer, Depends(requires("campaigns.approve"))],
    content_hash: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
    keep_pending: Annotated[bool, Form()] = False,
) -> Response:
    """Approve the version whose hash the page showed; a version changed since is refused (stale)."""
    context = context_of(request)
    try:
        with acting(request, viewer) as (session, user):
            workflow.approve(
                session,
                campaign_id=campaign_id,
                actor=user,
                clock=context.clock,
                version_number=number,
                content_hash=content_hash,
                reason=reason.strip() or None,
                keep_pending=keep_pending,
            )
    except UserError as exc:
        return refused(request, exc, back=f"/campaigns/{campaign_id}/versions/{number}/preview")
    return done(campaign_id, "approved")


@router.post("/campaigns/{campaign_id}/versions/{number}/reject")
def reject(
    request: Request,
    campaign_id: str,
    number: int,
    viewer: Annotated[Viewer, Depends(requires("campaigns.approve"))],
    content_hash: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Reject, with the reason the editor reads (the service refuses an empty one)."""
    context = context_of(request)
    try:
        with acting(request, viewer) as (session, user):
            workflow.reject(
                session,
                campaign_id=campaign_id,
                actor=user,
                clock=context.clock,
                reason=reason,
                version_number=number,
                content_hash=content_hash,
            )
    except UserError as exc:
        return refused(request, exc, back=f"/campaigns/{campaign_id}/versions/{number}/preview")
    return done(campaign_id, "rejected")
