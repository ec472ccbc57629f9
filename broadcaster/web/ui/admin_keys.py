"""The administration page's API keys (``api_keys.manage``): create — the key shown once, on the result
page, with a warning —, list, revoke, through ``broadcaster.api_keys`` (which audits each)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from broadcaster.api_keys import create_key, revoke_key
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.vocabulary import Role
from broadcaster.web.auth import Viewer, context_of, requires
from broadcaster.web.ui.admin_page import admin_page

router = APIRouter()


@router.post("/admin/api-keys", response_class=HTMLResponse)
def create(
    request: Request,
    viewer: Annotated[Viewer, Depends(requires("api_keys.manage"))],
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    campaigns: Annotated[str, Form()] = "",
    rate: Annotated[str, Form()] = "",
) -> Response:
    context = context_of(request)
    if role not in {r.value for r in Role}:
        return admin_page(request, status_code=422, error=_("Role: choose one of the list."))
    try:
        per_minute = int(rate) if rate.strip() else context.settings.web.api_rate_per_minute
    except ValueError:
        return admin_page(request, status_code=422, error=_("Requests per minute: give a whole number."))
    chosen = [c.strip() for c in campaigns.replace(";", ",").split(",") if c.strip()]
    try:
        with context.sessions.begin() as session:
            created = create_key(
                session, actor=viewer.login, name=name, role=Role(role), clock=context.clock,
                rate_per_minute=per_minute, campaigns=chosen or None,
            )  # fmt: skip
            shown = {"name": created.key.name, "prefix": created.key.prefix, "secret": created.secret}
    except UserError as exc:
        return admin_page(request, status_code=422, error=str(exc))
    # The whole key exists only in this response: never stored, never logged, not cached.
    return admin_page(request, created_key=shown)


@router.post("/admin/api-keys/{prefix}/revoke", response_class=HTMLResponse)
def revoke(
    request: Request,
    viewer: Annotated[Viewer, Depends(requires("api_keys.manage"))],
    prefix: str,
    reason: Annotated[str, Form()] = "",
) -> Response:
    context = context_of(request)
    try:
        with context.sessions.begin() as session:
            revoke_key(
                session, actor=viewer.login, prefix=prefix, clock=context.clock, reason=reason.strip() or None
            )
    except UserError as exc:
        return admin_page(request, status_code=422, error=str(exc))
    return RedirectResponse("/admin?done=revoked", status_code=303)
