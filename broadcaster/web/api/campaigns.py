"""The API's campaign operations: list, get, validate and load versions, the review, send and the run states.

Each operation calls the service its CLI command calls (``campaigns …``, ``send``, ``status``) with the same
role action; a key bound to some campaigns gets 404 for the others (``ApiCaller.check_campaign``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.campaigns import workflow
from broadcaster.campaigns.files import ProviderInfo, SendRules
from broadcaster.campaigns.plan import plan_from_settings
from broadcaster.campaigns.sent_text import TextChecks, validate_text
from broadcaster.campaigns.store import get_version, load_bundle
from broadcaster.clock import local
from broadcaster.context import AppContext
from broadcaster.db.models import Campaign
from broadcaster.i18n import gettext as _
from broadcaster.outbox.sending import start_manual_run
from broadcaster.progress import send_window_note
from broadcaster.status import campaign_status
from broadcaster.web.api.auth import ApiCaller, api_requires
from broadcaster.web.api.errors import PROBLEMS, service_errors
from broadcaster.web.api.idempotency import replay_or_run
from broadcaster.web.auth import context_of
from broadcaster.web.problems import Problem

router = APIRouter(prefix="/campaigns", tags=["campaigns"], responses=PROBLEMS)

CampaignId = Field(max_length=100)


class CampaignSummary(BaseModel):
    id: str
    title: str
    state: str
    latest_version: int | None
    latest_status: str | None
    next_occurrence_at: str | None


class CampaignStatus(BaseModel):
    """As ``broadcaster status --json``: state, versions with their decisions, runs, message counts."""

    id: str
    title: str
    state: str
    paused_reason: str | None
    approved_version: int | None
    next_occurrence_at: str | None
    versions: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    messages: dict[str, dict[str, int]]
    test_sends: dict[str, dict[str, int]]


class CampaignDetail(CampaignStatus):
    """The status plus the latest version's definition (the snapshot approval binds to)."""

    definition: dict[str, Any]
    content_hash: str


class CampaignText(BaseModel):
    """A campaign file's YAML and, optionally, templates by path (``sms/x.txt.j2``); templates not sent are
    the installation's."""

    campaign: str = Field(min_length=1, max_length=200_000, description="The campaign file (YAML).")
    templates: dict[str, str] = Field(default_factory=dict, description="Template path → its text.")


class FileProblem(BaseModel):
    file: str
    line: int | None
    field: str | None
    message: str


class Validation(BaseModel):
    valid: bool
    id: str | None
    content_hash: str | None
    problems: list[FileProblem]


class Loaded(BaseModel):
    campaign_id: str
    version: int
    status: str
    content_hash: str
    superseded: list[int]


class Reason(BaseModel):
    reason: str | None = Field(default=None, max_length=2000)


class Approval(BaseModel):
    content_hash: str = Field(min_length=8, max_length=64, description="The hash of the version reviewed.")
    version: int | None = Field(default=None, ge=1)
    reason: str | None = Field(default=None, max_length=2000)
    keep_pending: bool = False


class Rejection(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    content_hash: str = Field(min_length=8, max_length=64)
    version: int | None = Field(default=None, ge=1)


class VersionState(BaseModel):
    campaign_id: str
    version: int
    status: str
    content_hash: str
    approvals: int
    required_approvals: int


class CampaignState(BaseModel):
    campaign_id: str
    state: str


class SendRequest(BaseModel):
    again: bool = Field(default=False, description="Send a one-off campaign that already went out again.")


class SendResult(BaseModel):
    run_id: int
    status: str
    outside_send_window: str | None


def _checks(context: AppContext) -> TextChecks:
    settings = context.settings
    return TextChecks(
        templates_dir=context.templates_dir,
        providers=ProviderInfo.all_from(settings),
        rules=SendRules.from_settings(settings),
        plan=plan_from_settings(settings),
    )


def _problems(problems: list[Any]) -> list[FileProblem]:
    return [FileProblem(file=str(p.file), line=p.line, field=p.field, message=p.message) for p in problems]


@router.get("", response_model=list[CampaignSummary])
def list_campaigns(
    request: Request, caller: ApiCaller = Depends(api_requires("read"))
) -> list[CampaignSummary]:
    """Every campaign this key may use, with its state and latest version (``campaigns list``)."""
    rows: list[CampaignSummary] = []
    with context_of(request).readers() as session:
        query = select(Campaign).order_by(Campaign.id)
        if caller.campaigns is not None:
            query = query.where(Campaign.id.in_(caller.campaigns))
        for campaign in session.scalars(query):
            latest = campaign.versions[-1] if campaign.versions else None
            rows.append(
                CampaignSummary(
                    id=campaign.id,
                    title=campaign.title,
                    state=campaign.state.value,
                    latest_version=latest.number if latest else None,
                    latest_status=latest.status.value if latest else None,
                    next_occurrence_at=local(campaign.next_occurrence_at).isoformat()
                    if campaign.next_occurrence_at
                    else None,
                )
            )
    return rows


@router.get("/{campaign_id}", response_model=CampaignDetail)
def get_campaign(
    request: Request, campaign_id: str, caller: ApiCaller = Depends(api_requires("read"))
) -> CampaignDetail:
    """The campaign's latest definition, its versions and its runs."""
    caller.check_campaign(campaign_id)
    with context_of(request).readers() as session, service_errors(field="campaign_id"):
        data = campaign_status(session, campaign_id)
        latest = get_version(session, campaign_id, None)
        return CampaignDetail(**data, definition=latest.definition, content_hash=latest.content_hash)


@router.get("/{campaign_id}/status", response_model=CampaignStatus)
def status(
    request: Request, campaign_id: str, caller: ApiCaller = Depends(api_requires("read"))
) -> CampaignStatus:
    """As ``broadcaster status --json``."""
    caller.check_campaign(campaign_id)
    with context_of(request).readers() as session, service_errors(field="campaign_id"):
        return CampaignStatus(**campaign_status(session, campaign_id))


@router.post("/validate", response_model=Validation)
def validate(
    request: Request, body: CampaignText, _caller: ApiCaller = Depends(api_requires("read"))
) -> Validation:
    """The checks of ``campaigns validate``: every problem with its file, line and field. Stores nothing."""
    with service_errors(field="templates"):
        bundle, problems = validate_text(body.campaign, body.templates, _checks(context_of(request)))
    return Validation(
        valid=bundle is not None,
        id=bundle.definition.id if bundle else None,
        content_hash=bundle.content_hash if bundle else None,
        problems=_problems(problems),
    )


@router.post(
    "/load",
    response_model=Loaded,
    status_code=201,
    responses={200: {"model": Loaded, "description": "Unchanged: the same content was loaded before"}},
)
def load(
    request: Request, body: CampaignText, caller: ApiCaller = Depends(api_requires("campaigns.load"))
) -> JSONResponse:
    """Load the campaign as a new draft version (``campaigns load``); nothing is stored when it has
    problems (422 with the first, the rest under ``problems``). Honours ``Idempotency-Key``."""
    context = context_of(request)
    with service_errors(field="templates"):
        bundle, problems = validate_text(body.campaign, body.templates, _checks(context))
    if bundle is None:
        first = problems[0] if problems else None
        raise Problem(
            422,
            "invalid-campaign",
            _("Invalid campaign"),
            _("The campaign has %(n)s problem(s); nothing was loaded.") % {"n": len(problems)}
            + (f" {first}" if first else ""),
            field=(first.field if first and first.field else "campaign"),
            extensions={"problems": [p.model_dump() for p in _problems(problems)]},
        )
    caller.check_campaign(bundle.definition.id)
    user = caller.user()

    def create(session: Session) -> tuple[int, Any]:
        with service_errors():
            outcome = load_bundle(session, bundle, actor=user.login, clock=context.clock)
        loaded = Loaded(
            campaign_id=outcome.campaign_id,
            version=outcome.version,
            status=outcome.status,
            content_hash=outcome.content_hash,
            superseded=list(outcome.superseded),
        )
        return (200 if outcome.status == "unchanged" else 201), loaded.model_dump()

    return replay_or_run(request, caller, body.model_dump_json().encode(), create)


def _version_state(campaign_id: str, version: Any) -> VersionState:
    return VersionState(
        campaign_id=campaign_id,
        version=version.number,
        status=version.status.value,
        content_hash=version.content_hash,
        approvals=len(version.approvals),
        required_approvals=version.required_approvals,
    )


@router.post("/{campaign_id}/submit", response_model=VersionState)
def submit(
    request: Request,
    campaign_id: str,
    body: Reason,
    caller: ApiCaller = Depends(api_requires("campaigns.submit")),
) -> VersionState:
    """Submit the latest draft for approval (``campaigns submit``)."""
    caller.check_campaign(campaign_id)
    context = context_of(request)
    with context.sessions.begin() as session, service_errors():
        version = workflow.submit(
            session,
            campaign_id=campaign_id,
            actor=caller.user(),
            settings=context.settings,
            clock=context.clock,
            reason=body.reason,
        )
        return _version_state(campaign_id, version)


@router.post("/{campaign_id}/approve", response_model=VersionState)
def approve(
    request: Request,
    campaign_id: str,
    body: Approval,
    caller: ApiCaller = Depends(api_requires("campaigns.approve")),
) -> VersionState:
    """Approve the submitted version whose content hash is given (``campaigns approve --hash``); not the
    submitter's own. Older versions' pending messages stop unless ``keep_pending``."""
    caller.check_campaign(campaign_id)
    context = context_of(request)
    with context.sessions.begin() as session, service_errors(field="content_hash"):
        version = workflow.approve(
            session,
            campaign_id=campaign_id,
            actor=caller.user(),
            clock=context.clock,
            version_number=body.version,
            content_hash=body.content_hash,
            reason=body.reason,
            keep_pending=body.keep_pending,
        )
        return _version_state(campaign_id, version)


@router.post("/{campaign_id}/reject", response_model=VersionState)
def reject(
    request: Request,
    campaign_id: str,
    body: Rejection,
    caller: ApiCaller = Depends(api_requires("campaigns.approve")),
) -> VersionState:
    """Reject the submitted version, with the reason (``campaigns reject``)."""
    caller.check_campaign(campaign_id)
    context = context_of(request)
    with context.sessions.begin() as session, service_errors(field="content_hash"):
        version = workflow.reject(
            session,
            campaign_id=campaign_id,
            actor=caller.user(),
            clock=context.clock,
            reason=body.reason,
            version_number=body.version,
            content_hash=body.content_hash,
        )
        return _version_state(campaign_id, version)


def _transition(
    request: Request, campaign_id: str, caller: ApiCaller, name: str, reason: str | None
) -> CampaignState:
    caller.check_campaign(campaign_id)
    context = context_of(request)
    change = {"pause": workflow.pause, "resume": workflow.resume, "cancel": workflow.cancel}[name]
    with context.sessions.begin() as session, service_errors():
        change(session, campaign_id=campaign_id, actor=caller.user(), clock=context.clock, reason=reason)
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        return CampaignState(campaign_id=campaign_id, state=campaign.state.value)


@router.post("/{campaign_id}/pause", response_model=CampaignState)
def pause(
    request: Request,
    campaign_id: str,
    body: Reason,
    caller: ApiCaller = Depends(api_requires("campaigns.pause")),
) -> CampaignState:
    """Pause: nothing more is sent from the next window on (``campaigns pause``)."""
    return _transition(request, campaign_id, caller, "pause", body.reason)


@router.post("/{campaign_id}/resume", response_model=CampaignState)
def resume(
    request: Request,
    campaign_id: str,
    body: Reason,
    caller: ApiCaller = Depends(api_requires("campaigns.resume")),
) -> CampaignState:
    """Resume a paused campaign (``campaigns resume``)."""
    return _transition(request, campaign_id, caller, "resume", body.reason)


@router.post("/{campaign_id}/cancel", response_model=CampaignState)
def cancel(
    request: Request,
    campaign_id: str,
    body: Reason,
    caller: ApiCaller = Depends(api_requires("campaigns.cancel")),
) -> CampaignState:
    """Cancel for good: queued messages are cancelled (``campaigns cancel``)."""
    return _transition(request, campaign_id, caller, "cancel", body.reason)


def plan_run(context: AppContext, run_id: int) -> None:
    """Hand the new run to the workers, as ``send`` does (the tests replace this)."""
    from broadcaster.tasks import CeleryEnqueuer, configure

    configure(context.settings)
    CeleryEnqueuer().plan_run(run_id)


@router.post("/{campaign_id}/send", response_model=SendResult, status_code=201)
def send(
    request: Request,
    campaign_id: str,
    body: SendRequest,
    caller: ApiCaller = Depends(api_requires("campaigns.send")),
) -> JSONResponse:
    """Start a run of the approved version now (``send`` without ``--wait``); the workers send it. Honours
    ``Idempotency-Key``: the same key starts one run."""
    caller.check_campaign(campaign_id)
    context = context_of(request)
    user = caller.user()

    def create(session: Session) -> tuple[int, Any]:
        with service_errors():
            run_id = start_manual_run(
                session, campaign_id=campaign_id, actor=user, clock=context.clock, again=body.again
            )
        return 201, {"run_id": run_id, "status": "queued", "outside_send_window": None}

    response = replay_or_run(request, caller, body.model_dump_json().encode(), create)
    if "idempotent-replayed" not in response.headers:
        payload = SendResult.model_validate_json(bytes(response.body))
        plan_run(context, payload.run_id)
        payload.outside_send_window = send_window_note(context, payload.run_id)
        return JSONResponse(payload.model_dump(), status_code=201)
    return response
