"""The administration page's users part (``users.manage``): list, add, change a role, set a password,
deactivate — the services ``broadcaster users …`` calls, each audited there. A refused change re-renders the
page with the service's reason (422); nothing is half-done (one transaction per change)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.users import add_user, deactivate, set_password, set_role
from broadcaster.vocabulary import Role
from broadcaster.web.auth import Viewer, context_of, requires
from broadcaster.web.ui.admin_page import ROLES, admin_page

router = APIRouter()


def change(request: Request, viewer: Viewer, act: Callable[[Session, str], object], done: str) -> Response:
    """Run one change in its own transaction; the service's refusal is shown, nothing stored."""
    context = context_of(request)
    try:
        with context.sessions.begin() as session:
            act(session, viewer.login)
    except UserError as exc:
        return admin_page(request, status_code=422, error=str(exc))
    return RedirectResponse(f"/admin?done={done}", status_code=303)


@router.get("/admin", response_class=HTMLResponse)
def admin(request: Request, viewer: Annotated[Viewer, Depends(requires("users.manage"))]) -> HTMLResponse:
    return admin_page(request)


@router.post("/admin/users", response_class=HTMLResponse)
def add(
    request: Request,
    viewer: Annotated[Viewer, Depends(requires("users.manage"))],
    login: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    if role not in ROLES:
        return admin_page(request, status_code=422, error=_("Role: choose one of the list."))
    if not login.strip():
        return admin_page(request, status_code=422, error=_("Login: give the new user's login."))
    clock = context_of(request).clock

    def act(session: Session, actor: str) -> None:
        add_user(session, actor=actor, login=login.strip(), role=Role(role), clock=clock,
                 display_name=display_name.strip() or None)  # fmt: skip
        if password:
            session.flush()
            set_password(session, actor=actor, login=login.strip(), password=password, clock=clock)

    return change(request, viewer, act, "added")


@router.post("/admin/users/{login}/role", response_class=HTMLResponse)
def change_role(
    request: Request,
    viewer: Annotated[Viewer, Depends(requires("users.manage"))],
    login: str,
    role: Annotated[str, Form()] = "",
) -> Response:
    if role not in ROLES:
        return admin_page(request, status_code=422, error=_("Role: choose one of the list."))
    clock = context_of(request).clock
    return change(
        request,
        viewer,
        lambda s, actor: set_role(s, actor=actor, login=login, role=Role(role), clock=clock),
        "role",
    )


@router.post("/admin/users/{login}/password", response_class=HTMLResponse)
def change_password(
    request: Request,
    viewer: Annotated[Viewer, Depends(requires("users.manage"))],
    login: str,
    password: Annotated[str, Form()] = "",
) -> Response:
    clock = context_of(request).clock
    return change(
        request,
        viewer,
        lambda s, actor: set_password(s, actor=actor, login=login, password=password, clock=clock),
        "password",
    )


@router.post("/admin/users/{login}/deactivate", response_class=HTMLResponse)
def deactivate_user(
    request: Request, viewer: Annotated[Viewer, Depends(requires("users.manage"))], login: str
) -> Response:
    clock = context_of(request).clock
    return change(
        request, viewer, lambda s, actor: deactivate(s, actor=actor, login=login, clock=clock), "deactivated"
    )
