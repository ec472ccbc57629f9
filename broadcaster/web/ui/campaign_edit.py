"""Load a new version from the browser: upload the campaign's YAML file, or edit it and its templates in
text areas. ``campaigns.staging`` checks the edits on a temporary copy (as ``campaigns validate``), writes them
into the working directory and loads them (as ``campaigns load``); any problem re-shows the form with every
problem as file:line field message, and nothing is written or stored."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from broadcaster.campaigns.files import Problem
from broadcaster.campaigns.staging import FileEdits, WorkingDirs, load_edits, relative_file
from broadcaster.campaigns.store import get_campaign, latest_version
from broadcaster.context import AppContext
from broadcaster.db.models import CampaignVersion
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.web.auth import Viewer, context_of, requires
from broadcaster.web.templating import render
from broadcaster.web.ui.campaign_common import acting, done, refused

router = APIRouter()

# An upload larger than this is no campaign file (they are a few kilobytes).
MAX_UPLOAD_BYTES = 512 * 1024


def _dirs(context: AppContext) -> WorkingDirs:
    return WorkingDirs(campaigns=context.campaigns_dir, templates=context.templates_dir)


def _campaign_file(version: CampaignVersion, dirs: WorkingDirs) -> PurePosixPath:
    """Where the campaign's file lives under campaigns/: where it was loaded from, or ``<id>.yaml``."""
    try:
        relative = Path(version.source_path).resolve().relative_to(dirs.campaigns.resolve())
    except ValueError:
        return PurePosixPath(f"{version.campaign_id}.yaml")
    return relative_file(relative.as_posix(), template=False) or PurePosixPath(f"{version.campaign_id}.yaml")


def _current_templates(version: CampaignVersion, dirs: WorkingDirs) -> dict[str, str]:
    """The latest version's templates as the working directory has them now (its snapshot where a file is gone)."""
    texts: dict[str, str] = {}
    for name, snapshot in sorted(version.templates.items()):
        on_disk = dirs.templates / name
        texts[name] = on_disk.read_text(encoding="utf-8") if on_disk.is_file() else snapshot
    return texts


def _shown(problem: Problem, base: Path) -> dict[str, Any]:
    try:
        file = problem.file.relative_to(base).as_posix()
    except ValueError:
        file = str(problem.file)
    return {"file": file, "line": problem.line, "field": problem.field, "message": problem.message}


def _form(
    request: Request,
    *,
    campaign_id: str,
    title: str,
    campaign_file: PurePosixPath,
    campaign_text: str,
    templates: dict[str, str],
    problems: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "campaigns/edit.html",
        status_code=status_code,
        campaign_id=campaign_id,
        title=title,
        campaign_file=str(campaign_file),
        campaign_text=campaign_text,
        templates=templates,
        problems=problems or [],
    )


@router.get("/campaigns/{campaign_id}/edit", response_class=HTMLResponse)
def edit_form(
    request: Request, campaign_id: str, viewer: Annotated[Viewer, Depends(requires("campaigns.load"))]
) -> HTMLResponse:
    context = context_of(request)
    dirs = _dirs(context)
    with context.readers() as session:
        try:
            title = get_campaign(session, campaign_id).title
            latest = latest_version(session, campaign_id)
        except UserError as exc:
            return refused(request, exc, back="/campaigns")
        campaign_file = _campaign_file(latest, dirs)
        on_disk = dirs.campaigns / campaign_file
        text = on_disk.read_text(encoding="utf-8") if on_disk.is_file() else latest.source_text
        templates = _current_templates(latest, dirs)
    return _form(
        request,
        campaign_id=campaign_id,
        title=title,
        campaign_file=campaign_file,
        campaign_text=text,
        templates=templates,
    )


def _lf(text: str) -> str:
    """Browsers send text areas with CRLF line ends; the files keep LF (and the hash does not change by it)."""
    return text.replace("\r\n", "\n")


async def _uploaded(value: object) -> tuple[str | None, str | None]:
    """The uploaded file's text, or the problem with it; (None, None) when no file was chosen."""
    if not isinstance(value, UploadFile) or not value.filename:
        return None, None
    data = await value.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        return None, _("The uploaded file is larger than %(size)s KB.") % {"size": MAX_UPLOAD_BYTES // 1024}
    try:
        return _lf(data.decode("utf-8-sig")), None
    except UnicodeDecodeError:
        return None, _("The uploaded file is not UTF-8 text.")


@router.post("/campaigns/{campaign_id}/versions")
async def load_version(
    request: Request, campaign_id: str, viewer: Annotated[Viewer, Depends(requires("campaigns.load"))]
) -> Response:
    """Validate the edits, then write and load them; problems re-show the form (422), nothing stored."""
    context = context_of(request)
    dirs = _dirs(context)
    form = await request.form()
    with context.readers() as session:
        try:
            title = get_campaign(session, campaign_id).title
            latest = latest_version(session, campaign_id)
        except UserError as exc:
            return refused(request, exc, back="/campaigns")
        campaign_file = _campaign_file(latest, dirs)
        current = _current_templates(latest, dirs)
    uploaded, upload_problem = await _uploaded(form.get("campaign_file"))
    text_value = form.get("campaign_text")
    campaign_text = (
        uploaded if uploaded is not None else _lf(text_value if isinstance(text_value, str) else "")
    )
    edited: dict[str, str] = {}
    problems: list[dict[str, Any]] = []
    paths, texts = form.getlist("template_path"), form.getlist("template_text")
    for path, text in zip(paths, texts, strict=False):
        if not isinstance(path, str) or not isinstance(text, str):
            continue
        name = relative_file(path, template=True)
        if name is None:
            problems.append(
                {"file": path, "line": None, "field": "template_path", "message": _("Not a template path.")}
            )
            continue
        edited[str(name)] = _lf(text)
    if upload_problem:
        problems.append({"file": "", "line": None, "field": "campaign_file", "message": upload_problem})
    shown_templates = {**current, **edited}
    if not problems:
        changed = {name: text for name, text in edited.items() if current.get(name) != text}
        edits = FileEdits(campaign_file=campaign_file, campaign_text=campaign_text, templates=changed)
        try:
            with acting(request, viewer) as (session, user):
                outcome, found = load_edits(
                    session,
                    edits,
                    dirs=dirs,
                    settings=context.settings,
                    expected_id=campaign_id,
                    actor=user.login,
                    clock=context.clock,
                )
        except UserError as exc:
            return refused(request, exc, back=f"/campaigns/{campaign_id}")
        problems = [_shown(p, context.settings.base_dir) for p in found]
        if outcome is not None:
            return done(campaign_id, "unchanged" if outcome.status == "unchanged" else "loaded")
    return _form(
        request,
        campaign_id=campaign_id,
        title=title,
        campaign_file=campaign_file,
        campaign_text=campaign_text,
        templates=shown_templates,
        problems=problems,
        status_code=422,
    )
