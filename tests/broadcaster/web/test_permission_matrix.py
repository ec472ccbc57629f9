"""Every route of the web application × every role: each declares exactly one action of
``users.PERMISSIONS`` (unless it is public), and answers as that table says — anonymous people are sent to
the sign-in form (or get 401), a role the action does not list gets 403, the roles it lists get through.

The routes are read from ``create_app`` at test time, so a page or API operation added later without
``requires`` / ``api_requires`` fails here with its path named.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from starlette.routing import Mount

from broadcaster.context import AppContext
from broadcaster.db.models import User, WebSession
from broadcaster.users import PERMISSIONS
from broadcaster.vocabulary import Role
from broadcaster.web.api.auth import api_requires
from broadcaster.web.app import create_app
from broadcaster.web.auth import CSRF_HEADER, SESSION_COOKIE, open_session, requires, token_hash
from broadcaster.web.problems import PROBLEM_MEDIA_TYPE
from tests.broadcaster.conftest import database_dump
from tests.broadcaster.web.conftest import LOGIN_OF
from tests.broadcaster.web.routes import Endpoint, endpoints, fill_path, is_public
from tests.broadcaster.web.seeded import SPARE_LOGIN, Seeded, seed

ANONYMOUS = "anonymous"
COLUMNS = (ANONYMOUS, Role.AUDITOR, Role.APPROVER, Role.EDITOR, Role.ADMIN)


def undeclared(found: list[Endpoint]) -> list[str]:
    """The routes that break the rule, each with why."""
    problems = []
    for endpoint in found:
        if is_public(endpoint.path):
            continue
        distinct = set(endpoint.actions)
        if not distinct:
            problems.append(f"{endpoint.label}: no Depends(requires(…)) / Depends(api_requires(…))")
        elif len(distinct) > 1:
            problems.append(f"{endpoint.label}: more than one action {sorted(distinct)}")
        elif endpoint.actions[0] not in PERMISSIONS:
            problems.append(f"{endpoint.label}: unknown action {endpoint.actions[0]!r}")
    return problems


def test_every_route_declares_exactly_one_action_or_is_public(context: AppContext) -> None:
    found = endpoints(create_app(context))
    labels = {endpoint.label for endpoint in found}
    # The walk must reach the mounted API and the UI, or this test would pass on nothing.
    assert "GET /" in labels
    assert "POST /sign-out" in labels
    assert "GET /api/v1/openapi.json" in labels
    # The city app's signed endpoints are public: their HMAC signature is their check.
    assert {
        "POST /city-app/consent/withdraw",
        "POST /city-app/devices",
        "POST /city-app/push-shown",
    } <= labels
    assert all(is_public(label.split(" ", 1)[1]) for label in labels if " /city-app/" in label)
    # So is a provider's webhook: the provider's own signature, checked by its adapter, is its check.
    assert "POST /webhooks/{provider_type}/{provider}" in labels
    problems = undeclared(found)
    assert not problems, "routes without exactly one role check:\n" + "\n".join(problems)


def test_a_route_added_without_a_role_check_is_named(context: AppContext) -> None:
    app = create_app(context)
    stray = APIRouter()

    @stray.post("/campaigns/{campaign_id}/oops")
    def oops(campaign_id: str) -> None: ...

    @stray.get("/twice", dependencies=[Depends(requires("read"))])
    def twice(_viewer: object = Depends(requires("users.manage"))) -> None: ...

    app.include_router(stray)
    problems = undeclared(endpoints(app))
    assert problems == [
        "POST /campaigns/{campaign_id}/oops: no Depends(requires(…)) / Depends(api_requires(…))",
        "GET /twice: more than one action ['read', 'users.manage']",
    ]


class Caller:
    """Calls one endpoint as one column of the matrix: a fresh session per call for a role (a route that
    signs out or ends sessions does not spoil the next call), an API key for the API."""

    def __init__(self, context: AppContext, client: TestClient, seeded: Seeded) -> None:
        self.context = context
        self.client = client
        self.seeded = seeded
        self.idempotency = itertools.count(1)
        self._kept = ("", "")

    def _session(self, role: Role) -> tuple[str, str]:
        web = self.context.settings.web
        with self.context.sessions.begin() as session:
            user = session.scalar(select(User).where(User.login == LOGIN_OF[role]))
            assert user is not None
            token = open_session(
                session, user, method="password", web=web, now=self.context.clock.now(), client="matrix"
            )
            row = session.get(WebSession, token_hash(token))
            assert row is not None
            return token, row.csrf_token

    def sign_in_once(self, role: Role) -> None:
        """Open one session for ``role`` to reuse with ``call(…, fresh_session=False)``."""
        self._kept = self._session(role)

    def call(self, endpoint: Endpoint, who: Role | str, *, fresh_session: bool = True) -> httpx.Response:
        path = fill_path(endpoint.path, self.seeded.values)
        self.client.cookies.clear()
        headers: dict[str, str] = {}
        body: dict[str, Any]
        if endpoint.api:
            headers["Accept"] = "application/json"
            headers["Idempotency-Key"] = f"matrix-{next(self.idempotency)}"
            if isinstance(who, Role):
                headers["Authorization"] = f"Bearer {self.seeded.api_keys[who]}"
            body = {"json": {}} if endpoint.changes else {}
        else:
            headers["Accept"] = "text/html"
            csrf = ""
            if isinstance(who, Role):
                token, csrf = self._session(who) if fresh_session else self._kept
                self.client.cookies.set(SESSION_COOKIE, token)
                headers[CSRF_HEADER] = csrf
            body = {"data": {"csrf_token": csrf}} if endpoint.changes else {}
        response: httpx.Response = self.client.request(
            endpoint.method, path, headers=headers, follow_redirects=False, **body
        )
        return response


def verdict(endpoint: Endpoint, who: Role | str, response: httpx.Response) -> str | None:
    """None when the answer is what ``PERMISSIONS`` says, else what was expected."""
    status = response.status_code
    if status >= 500:
        return "not a server error"
    if who == ANONYMOUS:
        if endpoint.api:
            if status != 401 or not response.headers.get("content-type", "").startswith(PROBLEM_MEDIA_TYPE):
                return "401 problem"
        elif endpoint.changes:
            if status != 401:
                return "401"
        elif status != 303 or not response.headers.get("location", "").startswith("/sign-in"):
            return "303 → /sign-in"
        return None
    allowed = who in PERMISSIONS[endpoint.actions[0]]
    if allowed and status in (401, 403):
        return "allowed"
    if not allowed and status != 403:
        return "403"
    return None


def table(rows: list[tuple[Endpoint, list[str]]]) -> str:
    header = ["route", "action", *(str(getattr(c, "value", c)) for c in COLUMNS)]
    lines = [header] + [[e.label, e.actions[0], *cells] for e, cells in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


@pytest.fixture
def seeded(context: AppContext, workdir: Path, people: dict[str, Role], contacts: object) -> Seeded:
    return seed(context, workdir)


@pytest.fixture
def client(context: AppContext) -> Iterator[TestClient]:
    with TestClient(create_app(context), raise_server_exceptions=False) as test_client:
        yield test_client


def matrix(caller: Caller, found: list[Endpoint]) -> list[tuple[Endpoint, list[str]]]:
    """Call each endpoint that declares one action as each column; the rows with a wrong answer."""
    wrong: list[tuple[Endpoint, list[str]]] = []
    for endpoint in found:
        if is_public(endpoint.path) or len(set(endpoint.actions)) != 1:
            continue  # the declaration test names these
        cells, bad = [], False
        # An allowed call may change data (approve, erase…); a later column then gets a 4xx, which is fine.
        for who in COLUMNS:
            response = caller.call(endpoint, who)
            expected = verdict(endpoint, who, response)
            cells.append(
                str(response.status_code) if expected is None else f"{response.status_code}≠{expected}"
            )
            bad = bad or expected is not None
        if bad:
            wrong.append((endpoint, cells))
    return wrong


def test_every_route_answers_each_role_as_the_permission_table_says(
    context: AppContext, client: TestClient, seeded: Seeded
) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    wrong = matrix(Caller(context, client, seeded), endpoints(app))
    assert not wrong, "answers that break users.PERMISSIONS (got≠expected):\n" + table(wrong)


def test_the_matrix_calls_ui_and_api_routes_and_reports_a_wrong_answer(
    context: AppContext, client: TestClient, seeded: Seeded
) -> None:
    """The sweep itself, on routes of its own: a UI action and an API operation that behave (no row), and
    one that fails for the role it allows (a row naming it)."""
    app = client.app
    assert isinstance(app, FastAPI)
    ui, api = APIRouter(), APIRouter()

    @ui.post("/campaigns/{campaign_id}/test-only")
    def ui_action(campaign_id: str, _v: object = Depends(requires("users.manage"))) -> dict[str, str]:
        return {"id": campaign_id}

    @ui.get("/test-only/broken")
    def broken(_v: object = Depends(requires("reports.read"))) -> None:
        raise RuntimeError("a page that fails for the roles that may open it")

    @api.post("/campaigns/{campaign_id}/test-only")
    def api_operation(campaign_id: str, _c: object = Depends(api_requires("campaigns.send"))) -> None: ...

    app.include_router(ui)
    mounted = next(r for r in app.routes if isinstance(r, Mount) and r.path == "/api/v1")
    mounted.app.include_router(api)  # type: ignore[attr-defined]
    found = [e for e in endpoints(app) if "test-only" in e.path]
    assert [(e.label, e.api) for e in found] == [
        ("POST /api/v1/campaigns/{campaign_id}/test-only", True),
        ("POST /campaigns/{campaign_id}/test-only", False),
        ("GET /test-only/broken", False),
    ]
    wrong = matrix(Caller(context, client, seeded), found)
    assert [(e.label, cells) for e, cells in wrong] == [
        (
            "GET /test-only/broken",
            ["303", "500≠not a server error", "403", "500≠not a server error", "500≠not a server error"],
        )
    ]
    assert "GET /test-only/broken  reports.read" in table(wrong)


# What a GET may write: the audit entries of reading personal data in full, the report rollups a report
# rebuilds for the open days (derived data, as `broadcaster report` does), and the caller's own bookkeeping
# (an API key's last_used_at, a session's last_seen_at).
GET_MAY_WRITE = ("audit_log", "audit_chain_head", "rollup_", "api_keys", "web_sessions")


def get_writes(context: AppContext, caller: Caller, found: list[Endpoint]) -> list[str]:
    """Each GET that declares an action, as an admin (an admin's API key for the API); those that wrote."""
    changed = []
    for endpoint in found:
        if endpoint.changes or is_public(endpoint.path) or len(set(endpoint.actions)) != 1:
            continue
        if not endpoint.api:
            caller.sign_in_once(Role.ADMIN)  # the session's own row is written before the snapshot
        before = _kept(database_dump(context.engine))
        caller.call(endpoint, Role.ADMIN, fresh_session=False)
        after = _kept(database_dump(context.engine))
        if after != before:
            tables = sorted(name for name in after if after[name] != before.get(name))
            changed.append(f"{endpoint.label}: {', '.join(tables)}")
    return changed


def test_no_get_changes_data(context: AppContext, client: TestClient, seeded: Seeded) -> None:
    """Only routes that change something may be POST (or PUT, PATCH, DELETE)."""
    app = client.app
    assert isinstance(app, FastAPI)
    changed = get_writes(context, Caller(context, client, seeded), endpoints(app))
    assert not changed, "GET routes that change data (make them POST):\n" + "\n".join(changed)


def test_a_get_that_writes_is_named(context: AppContext, client: TestClient, seeded: Seeded) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    stray, calls = APIRouter(), itertools.count()

    @stray.get("/test-only/writes")
    def writes(_v: object = Depends(requires("read"))) -> None:
        with context.sessions.begin() as session:
            session.execute(
                update(User).where(User.login == SPARE_LOGIN).values(display_name=f"{next(calls)}")
            )

    app.include_router(stray)
    found = [e for e in endpoints(app) if e.path.startswith("/test-only")]
    assert get_writes(context, Caller(context, client, seeded), found) == ["GET /test-only/writes: users"]


def _kept(dump: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    return {name: rows for name, rows in dump.items() if not name.startswith(GET_MAY_WRITE)}
