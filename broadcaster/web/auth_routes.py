"""``/sign-in``, ``/sign-out`` and the language switch: the only pages a person sees before signing in."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from broadcaster import i18n
from broadcaster.db.models import User
from broadcaster.web.auth import (
    SESSION_COOKIE,
    SignInRefused,
    Viewer,
    authenticate,
    context_of,
    current_viewer,
    end_session,
    open_session,
    requires,
    sso_login,
)
from broadcaster.web.language import LANGUAGE_COOKIE
from broadcaster.web.templating import render

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only a path of this site: ``next=https://evil.example`` or ``//evil.example`` goes home instead."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


def _signed_in(request: Request, token: str, target: str) -> Response:
    context = context_of(request)
    response = RedirectResponse(_safe_next(target), status_code=303)
    secure = context.settings.web.secure_cookies == "always" or request.url.scheme == "https"
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=context.settings.web.session_max_hours * 3600,
        httponly=True,
        secure=secure,
        samesite="lax",
        path="/",
    )
    return response


@router.get("/sign-in")
def sign_in_form(request: Request, next: str = "/") -> Response:
    context = context_of(request)
    web = context.settings.web
    login = sso_login(request, web)
    if login is not None:
        now = context.clock.now()
        with context.sessions.begin() as session:
            user = session.scalar(select(User).where(User.login == login, User.active.is_(True)))
            if user is not None:
                token = open_session(session, user, method="sso", web=web, now=now, client=_client(request))
                return _signed_in(request, token, next)
    if current_viewer(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "sign_in.html", next=_safe_next(next), error=None, login="")


@router.post("/sign-in")
def sign_in(
    request: Request,
    login: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    context = context_of(request)
    web = context.settings.web
    now = context.clock.now()
    error: str | None = None
    locked_until = None
    with context.sessions.begin() as session:
        try:
            user = authenticate(
                session, login=login, password=password, web=web, now=now, client=_client(request)
            )
            token = open_session(session, user, method="password", web=web, now=now, client=_client(request))
        except SignInRefused as refused:
            error, locked_until = refused.reason, refused.locked_until
    if error is not None:
        return render(
            request,
            "sign_in.html",
            status_code=401 if locked_until is None else 423,
            next=_safe_next(next),
            error=i18n.gettext(error),
            locked_until=locked_until,
            login=login,
        )
    return _signed_in(request, token, next)


@router.post("/sign-out")
def sign_out(request: Request, viewer: Annotated[Viewer, Depends(requires("read"))]) -> Response:
    context = context_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with context.sessions.begin() as session:
            end_session(session, token, now=context.clock.now())
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/language")
def choose_language(
    request: Request, language: Annotated[str, Form()] = "vi", next: Annotated[str, Form()] = "/"
) -> Response:
    """Anyone may switch (the sign-in page too): a cookie, no data changes, so no CSRF token is needed."""
    response = RedirectResponse(_safe_next(next), status_code=303)
    if language in i18n.LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 86400, samesite="lax", path="/")
    return response
