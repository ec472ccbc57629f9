"""Who is at the browser: sign-in by password (with lock-out) or by the city SSO's header, server-side
sessions with a CSRF token each, and ``requires(action)``, the role check every page and action declares.

The cookie holds a random token; the ``web_sessions`` table holds its SHA-256. A sign-in always opens a new
session (a token planted before sign-in is never promoted: no session fixation), sign-out and a password
change end it, and it ends by itself after ``[web] session_idle_minutes`` without a request or
``session_max_hours`` in all.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.context import AppContext
from broadcaster.db.models import User, WebSession
from broadcaster.i18n import N_
from broadcaster.settings_sections import WebSettings
from broadcaster.users import PERMISSIONS, password_matches

SESSION_COOKIE = "broadcaster_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# last_seen_at is written at most this often, so reading pages does not write on every request.
_TOUCH_EVERY = timedelta(seconds=60)
LOCKED = N_("Too many failed sign-ins: this account is locked.")


class SignInRequired(Exception):
    """No valid session: a page redirects to the sign-in form, a script gets 401."""


class Forbidden(Exception):
    """Signed in, but the role may not do ``action`` (or the CSRF token is wrong)."""

    def __init__(self, action: str, *, csrf: bool = False) -> None:
        super().__init__(action)
        self.action = action
        self.csrf = csrf


class SignInRefused(Exception):
    """Wrong login or password, a locked or deactivated account: ``reason`` is a message id to translate."""

    def __init__(self, reason: str, *, locked_until: datetime | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.locked_until = locked_until


@dataclass(frozen=True)
class Viewer:
    """The signed-in person of one request."""

    user_id: int
    login: str
    display_name: str | None
    role: str
    csrf_token: str
    method: str

    def may(self, action: str) -> bool:
        return self.role in {role.value for role in PERMISSIONS[action]}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def context_of(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


def authenticate(
    session: Session, *, login: str, password: str, web: WebSettings, now: datetime, client: str
) -> User:
    """The user whose password this is, or ``SignInRefused``; counts failures and locks the account after
    ``web.lockout_attempts`` in a row. The caller commits either way (the failure count must stick)."""
    user = session.scalar(select(User).where(User.login == login.strip().lower()))
    if user is None or not user.active:
        audit.record(
            session,
            actor=login[:64] or "-",
            action="web.sign_in_refused",
            subject_type="user",
            subject_id=login[:64] or "-",
            at=now,
            details={"client": client, "cause": "unknown or inactive login"},
        )
        raise SignInRefused(N_("Wrong login or password."))
    if user.locked_until is not None and user.locked_until > now:
        raise SignInRefused(LOCKED, locked_until=user.locked_until)
    if not password_matches(user, password):
        user.failed_signins += 1
        locked = user.failed_signins >= web.lockout_attempts
        if locked:
            user.locked_until = now + timedelta(minutes=web.lockout_minutes)
            user.failed_signins = 0
        audit.record(
            session,
            actor=user.login,
            action="web.locked_out" if locked else "web.sign_in_refused",
            subject_type="user",
            subject_id=user.login,
            at=now,
            details={"client": client, "cause": "wrong password"},
        )
        if locked:
            raise SignInRefused(LOCKED, locked_until=user.locked_until)
        raise SignInRefused(N_("Wrong login or password."))
    user.failed_signins = 0
    user.locked_until = None
    return user


def open_session(
    session: Session, user: User, *, method: str, web: WebSettings, now: datetime, client: str
) -> str:
    """A new session for ``user``; returns the cookie's token (never stored)."""
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_hash=token_hash(token),
            login=user.login,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=web.session_max_hours),
            method=method,
        )
    )
    audit.record(
        session,
        actor=user.login,
        action="web.sign_in",
        subject_type="user",
        subject_id=user.login,
        at=now,
        details={"client": client, "method": method},
    )
    return token


def end_session(session: Session, token: str, *, now: datetime) -> str | None:
    """End the session of ``token``; returns its login (None when there was none open)."""
    row = session.get(WebSession, token_hash(token))
    if row is None or row.ended_at is not None:
        return None
    row.ended_at = now
    audit.record(
        session, actor=row.login, action="web.sign_out", subject_type="user", subject_id=row.login, at=now
    )
    return row.login


def _live_session(
    session: Session, token: str, *, web: WebSettings, now: datetime
) -> tuple[WebSession, User] | None:
    found = session.execute(
        select(WebSession, User)
        .join(User, User.login == WebSession.login)
        .where(WebSession.token_hash == token_hash(token))
    ).first()
    if found is None:
        return None
    row, user = found[0], found[1]
    idle_limit = row.last_seen_at + timedelta(minutes=web.session_idle_minutes)
    if row.ended_at is not None or now >= row.expires_at or now >= idle_limit or not user.active:
        return None
    return row, user


def viewer_from_cookie(context: AppContext, token: str | None) -> Viewer | None:
    if not token:
        return None
    now = context.clock.now()
    web = context.settings.web
    with context.sessions.begin() as session:
        live = _live_session(session, token, web=web, now=now)
        if live is None:
            return None
        row, user = live
        if now - row.last_seen_at >= _TOUCH_EVERY:
            session.execute(
                update(WebSession).where(WebSession.token_hash == row.token_hash).values(last_seen_at=now)
            )
        return Viewer(user.id, user.login, user.display_name, user.role.value, row.csrf_token, row.method)


def sso_login(request: Request, web: WebSettings) -> str | None:
    """The login the city SSO's proxy vouches for, if configured and the request came from that proxy."""
    if not web.sso_header:
        return None
    peer = request.client.host if request.client else ""
    if peer not in web.sso_trusted_proxies:
        return None
    value = request.headers.get(web.sso_header, "").strip().lower()
    return value or None


def current_viewer(request: Request) -> Viewer | None:
    """The viewer of this request (cached on it), from the session cookie."""
    if hasattr(request.state, "viewer"):
        cached: Viewer | None = request.state.viewer
        return cached
    viewer = viewer_from_cookie(context_of(request), request.cookies.get(SESSION_COOKIE))
    request.state.viewer = viewer
    return viewer


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def requires(action: str) -> Callable[[Request], Awaitable[Viewer]]:
    """The dependency of a page or action that ``action``'s roles may use (``users.PERMISSIONS``).

    Anonymous: ``SignInRequired``. Wrong role: ``Forbidden``. A request that changes something (any method
    but GET and HEAD) must also carry the session's CSRF token, in the form field or the header."""
    if action not in PERMISSIONS:
        raise KeyError(f"unknown action {action!r}")

    async def dependency(request: Request) -> Viewer:
        viewer = current_viewer(request)
        if viewer is None:
            raise SignInRequired()
        if request.method not in ("GET", "HEAD"):
            given = request.headers.get(CSRF_HEADER)
            if given is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")
            ):
                form = await request.form()
                value = form.get(CSRF_FIELD)
                given = value if isinstance(value, str) else None
            if not csrf_matches(viewer.csrf_token, given):
                raise Forbidden(action, csrf=True)
        if not viewer.may(action):
            raise Forbidden(action)
        return viewer

    dependency.broadcaster_action = action  # type: ignore[attr-defined]  # read by the permission matrix test
    return dependency
