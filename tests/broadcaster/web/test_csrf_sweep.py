"""Every UI route that changes something refuses a request without the session's CSRF token (or with a wrong
one) with 403 and leaves the database as it was; the session cookie cannot be read by scripts, is not sent
on cross-site requests and travels only over HTTPS when the site is served over HTTPS.

Like the permission matrix, the routes are read from ``create_app`` at test time.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from broadcaster.context import AppContext
from broadcaster.db.models import User, WebSession
from broadcaster.vocabulary import Role
from broadcaster.web.app import create_app
from broadcaster.web.auth import CSRF_HEADER, SESSION_COOKIE, open_session, token_hash
from tests.broadcaster.conftest import ADMIN_LOGIN, database_dump
from tests.broadcaster.web.conftest import PASSWORD
from tests.broadcaster.web.routes import Endpoint, endpoints, fill_path, is_public
from tests.broadcaster.web.seeded import SPARE_LOGIN, Seeded, seed

# What a forged request may carry instead of the token: nothing, a wrong form field, a wrong header.
ATTEMPTS: dict[str, dict[str, Any]] = {
    "no token": {"data": {"reason": "giả mạo"}},
    "wrong form token": {"data": {"csrf_token": "not-the-token", "reason": "giả mạo"}},
    "wrong header token": {"headers": {CSRF_HEADER: "not-the-token"}, "json": {}},
}


@pytest.fixture
def seeded(context: AppContext, workdir: Path, people: dict[str, Role], contacts: object) -> Seeded:
    return seed(context, workdir)


@pytest.fixture
def admin_client(context: AppContext, seeded: Seeded) -> Iterator[TestClient]:
    """A client with an admin's session (opened directly: the sign-in form is tested elsewhere)."""
    with TestClient(create_app(context), raise_server_exceptions=False) as client:
        with context.sessions.begin() as session:
            admin = session.scalar(select(User).where(User.login == ADMIN_LOGIN))
            assert admin is not None
            token = open_session(
                session,
                admin,
                method="password",
                web=context.settings.web,
                now=context.clock.now(),
                client="t",
            )
        client.cookies.set(SESSION_COOKIE, token)
        yield client


def forged(context: AppContext, client: TestClient, seeded: Seeded, found: list[Endpoint]) -> list[str]:
    """Each forged request to each UI route that changes something; what was not refused or changed data."""
    problems = []
    for endpoint in found:
        if endpoint.api or not endpoint.changes or is_public(endpoint.path):
            continue
        path = fill_path(endpoint.path, seeded.values)
        for attempt, request in ATTEMPTS.items():
            before = database_dump(context.engine)
            headers = {"Accept": "text/html", **request.get("headers", {})}
            body = {k: v for k, v in request.items() if k != "headers"}
            response = client.request(endpoint.method, path, headers=headers, follow_redirects=False, **body)
            if response.status_code != 403:
                problems.append(f"{endpoint.label} ({attempt}): {response.status_code}, not 403")
            if database_dump(context.engine) != before:
                problems.append(f"{endpoint.label} ({attempt}): the database changed")
    return problems


def test_every_ui_route_that_changes_something_refuses_a_forged_request(
    context: AppContext, admin_client: TestClient, seeded: Seeded
) -> None:
    app = admin_client.app
    assert isinstance(app, FastAPI)
    found = endpoints(app)
    assert any(e.label == "POST /sign-out" for e in found)
    problems = forged(context, admin_client, seeded, found)
    assert not problems, "CSRF not enforced:\n" + "\n".join(problems)


def test_the_sweep_names_a_route_that_skips_the_token(
    context: AppContext, admin_client: TestClient, seeded: Seeded
) -> None:
    app = admin_client.app
    assert isinstance(app, FastAPI)
    stray, calls = APIRouter(), itertools.count()

    @stray.post("/campaigns/{campaign_id}/forgeable")
    def forgeable(campaign_id: str) -> None:
        with context.sessions.begin() as session:
            renamed = update(User).where(User.login == SPARE_LOGIN).values(display_name=f"Giả {next(calls)}")
            session.execute(renamed)

    app.include_router(stray)
    found = [e for e in endpoints(app) if "forgeable" in e.path]
    assert forged(context, admin_client, seeded, found) == [
        "POST /campaigns/{campaign_id}/forgeable (no token): 200, not 403",
        "POST /campaigns/{campaign_id}/forgeable (no token): the database changed",
        "POST /campaigns/{campaign_id}/forgeable (wrong form token): 200, not 403",
        "POST /campaigns/{campaign_id}/forgeable (wrong form token): the database changed",
        "POST /campaigns/{campaign_id}/forgeable (wrong header token): 200, not 403",
        "POST /campaigns/{campaign_id}/forgeable (wrong header token): the database changed",
    ]


def _session_cookie(response_headers: list[tuple[str, str]]) -> str:
    cookies = [v for k, v in response_headers if k.lower() == "set-cookie" and v.startswith(SESSION_COOKIE)]
    assert len(cookies) == 1, cookies
    return cookies[0]


@pytest.mark.parametrize("base_url", ["http://testserver", "https://testserver"])
def test_the_session_cookie_is_httponly_lax_and_secure_over_https(
    context: AppContext, people: dict[str, Role], base_url: str
) -> None:
    with TestClient(create_app(context), base_url=base_url) as client:
        response = client.post(
            "/sign-in", data={"login": "bien_tap", "password": PASSWORD, "next": "/"}, follow_redirects=False
        )
    assert response.status_code == 303
    cookie = _session_cookie(response.headers.multi_items())
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert ("secure" in attributes) == base_url.startswith("https")
    with context.readers() as session:
        token = cookie.split(";")[0].split("=", 1)[1]
        assert session.get(WebSession, token_hash(token)) is not None
