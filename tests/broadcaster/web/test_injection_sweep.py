"""HTML injection over every page: hostile markup is seeded where people's data and templates go in (a campaign
title, template output in SMS text and e-mail text and HTML, a contact's name, an audit reason and a staff
opt-out reason, user display names), then every GET route of ``create_app`` is called as admin, auditor and
editor with the hostile records' ids. No HTML answer may carry the markup as markup (its escaped form may
appear), except the e-mail sample, which is the e-mail's own HTML served under a ``sandbox`` policy for the
preview's frame. A run's progress is JSON; the API never answers with HTML.

The routes are read from the app at test time (``routes.py``), so a page added later is swept too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import select, update

from broadcaster.campaigns import workflow
from broadcaster.consent_withdrawals import withdraw_as_staff
from broadcaster.context import AppContext
from broadcaster.db.models import Contact, Message, User
from broadcaster.users import add_user
from broadcaster.vocabulary import Role
from broadcaster.web.app import create_app
from broadcaster.web.auth import requires
from broadcaster.web.problems import PROBLEM_MEDIA_TYPE
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.web.campaign_setup import CAMPAIGN, load_campaign, user_named
from tests.broadcaster.web.conftest import LOGIN_OF
from tests.broadcaster.web.routes import Endpoint, endpoints
from tests.broadcaster.web.seeded import Seeded, seed
from tests.broadcaster.web.test_permission_matrix import Caller

# Where each hostile text goes in; the sweep looks for each one as markup.
TITLE = '<script>alert("t")</script>'
TEMPLATE = "<img src=x onerror=alert(1)>"
CONTACT = '"><svg onload=alert(2)>'
REASON = '</textarea><script>alert("r")</script>'
DISPLAY_NAME = "<b onmouseover=alert(4)>Người dùng</b>"
HOSTILE = (TITLE, TEMPLATE, CONTACT, REASON, DISPLAY_NAME)
# What would run in a browser if a hostile text were copied in unescaped: its tag, whatever happens to the
# quotes and the closing tags around it.
MARKUP = ("<script>alert(", "<img src=x", "<svg onload", "<b onmouseover")

HOSTILE_LOGIN = "ten_doc"
SAMPLES = "/samples/"
# The e-mail sample's policy: a sandbox with no exception (no scripts, no forms, not the site's origin).
SAMPLE_SANDBOX = "sandbox"
JSON_TYPES = ("application/json", PROBLEM_MEDIA_TYPE)


@dataclass
class Hostile:
    seeded: Seeded
    contact_id: int
    version: int


def seed_hostile(context: AppContext, workdir: Path) -> Hostile:
    """The permission matrix's records, then a new version of the campaign with a hostile title and templates
    (submitted, and rejected with a hostile reason), a contact with a hostile name, opted out by staff with a
    hostile reason, a message with a hostile reason and users with hostile display names."""
    seeded = seed(context, workdir)
    templates = workdir / "templates"
    (templates / "email" / "thu-nghiem.html.j2").write_text(
        f"<html><body><p>{TEMPLATE}</p><p>{{{{ vars.ngay }}}}</p></body></html>", encoding="utf-8"
    )
    load_campaign(
        context,
        workdir,
        title=TITLE,
        sms_text=f"Thong bao {TEMPLATE} {{{{ vars.ngay }}}}",
        email_text=f"Kinh gui {{{{ contact.full_name }}}}, {TEMPLATE}\n",
    )
    with context.sessions.begin() as session:
        version = workflow.submit(
            session,
            campaign_id=CAMPAIGN,
            actor=user_named(session, "bien_tap"),
            settings=context.settings,
            clock=context.clock,
            reason=REASON,
        )
        number, content_hash = version.number, version.content_hash
        workflow.reject(
            session,
            campaign_id=CAMPAIGN,
            actor=user_named(session, "phe_duyet"),
            clock=context.clock,
            reason=REASON,
            content_hash=content_hash,
            version_number=number,
        )
    contact_id = seeded.values["contact"]
    with context.sessions.begin() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        contact.full_name = CONTACT
        address, channel = (contact.phone, "sms") if contact.phone else (contact.email, "email")
        assert address is not None
        withdraw_as_staff(
            session,
            address=address,
            channel=channel,
            purpose="advertising",
            reason=REASON,
            recorded_by=ADMIN_LOGIN,
            clock=context.clock,
        )
        session.execute(update(Message).where(Message.id == seeded.values["message"]).values(reason=REASON))
        add_user(
            session, actor=ADMIN_LOGIN, login=HOSTILE_LOGIN, role=Role.AUDITOR, clock=context.clock,
            display_name=DISPLAY_NAME,
        )  # fmt: skip
        # The people the sweep signs in as: their names are in every page's header.
        session.execute(
            update(User).where(User.login.in_(list(LOGIN_OF.values()))).values(display_name=DISPLAY_NAME)
        )
        assert session.scalar(select(User.id).where(User.login == HOSTILE_LOGIN)) is not None
    seeded.values.update(
        {"contact": contact_id, "login": HOSTILE_LOGIN, "user": HOSTILE_LOGIN, "version": number,
         "number": number, "index": 0}
    )  # fmt: skip
    return Hostile(seeded, contact_id, number)


@dataclass
class Sweep:
    """What the walk found: the answers that carry markup or have the wrong type, and every HTML body."""

    problems: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)  # the e-mail samples' Content-Security-Policy


def sweep(caller: Caller, found: list[Endpoint], who: Role) -> Sweep:
    result = Sweep()
    for endpoint in found:
        if endpoint.method != "GET":
            continue
        response = caller.call(endpoint, who)
        label = f"{endpoint.label} as {who.value} ({response.status_code})"
        kind = response.headers.get("content-type", "")
        if response.status_code >= 500:
            result.problems.append(f"{label}: server error")
        if endpoint.path.endswith("/progress"):  # read by app.js as JSON
            if not kind.startswith(JSON_TYPES):
                result.problems.append(f"{label}: {kind!r}, not JSON")
            continue
        if endpoint.api:  # JSON, problems, or an export's CSV / JSON Lines: never a page
            if "text/html" in kind:
                result.problems.append(f"{label}: {kind!r} from the API")
            continue
        if "text/html" not in kind:
            continue
        if SAMPLES in endpoint.path:
            result.samples.append(response.headers.get("content-security-policy", ""))
            continue
        shown = [markup for markup in MARKUP if markup in response.text]
        if shown:
            result.problems.append(f"{label}: unescaped {shown}")
        result.bodies.append(response.text)
    return result


@pytest.fixture
def hostile(context: AppContext, workdir: Path, people: object, contacts: object) -> Hostile:
    return seed_hostile(context, workdir)


@pytest.fixture
def client(context: AppContext) -> Iterator[TestClient]:
    with TestClient(create_app(context), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize("who", [Role.ADMIN, Role.AUDITOR, Role.EDITOR])
def test_no_page_shows_hostile_markup_unescaped(
    context: AppContext, client: TestClient, hostile: Hostile, who: Role
) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    found = endpoints(app)
    gets = {endpoint.path for endpoint in found if endpoint.method == "GET"}
    # The walk must reach the pages that show each seed, the API and the sample frame.
    assert {"/campaigns/{campaign_id}", "/contacts/{contact_id}", "/audit", "/admin"} <= gets
    assert any(path.startswith("/api/v1/") for path in gets)
    result = sweep(Caller(context, client, hostile.seeded), found, who)
    assert not result.problems, "\n".join(result.problems)
    pages = "\n".join(result.bodies)
    # Each seed did reach a page (escaped), or the sweep proves nothing about it. A contact's name is masked
    # for auditors and admins, so it shows in full to the editor only.
    expected = [TITLE, REASON, DISPLAY_NAME, TEMPLATE] + ([CONTACT] if who == Role.EDITOR else [])
    missing = [text for text in expected if str(escape(text)) not in pages]
    assert not missing, f"seeds shown on no page as {who.value}: {missing}"
    # The e-mail sample: the template's HTML as it is, for a frame sandboxed with no exception.
    assert result.samples, "the e-mail sample route was not swept"
    for policy in result.samples:
        directives = [directive.strip() for directive in policy.split(";")]
        assert SAMPLE_SANDBOX in directives, policy
        assert "allow-" not in policy, policy


def test_the_sample_is_the_template_s_html_under_its_own_policy(
    context: AppContext, client: TestClient, hostile: Hostile
) -> None:
    caller = Caller(context, client, hostile.seeded)
    found = [e for e in endpoints(client.app) if SAMPLES in e.path]  # type: ignore[arg-type]
    assert len(found) == 1
    response = caller.call(found[0], Role.AUDITOR)
    assert response.status_code == 200
    assert TEMPLATE in response.text  # the e-mail's own markup, which is why it is sandboxed
    assert response.headers["content-security-policy"].split(";")[0] == SAMPLE_SANDBOX


def test_the_sweep_names_a_page_that_copies_data_in_unescaped(
    context: AppContext, client: TestClient, hostile: Hostile
) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    stray = APIRouter()

    @stray.get("/test-only/unsafe", response_class=HTMLResponse)
    def unsafe(_v: object = Depends(requires("read"))) -> HTMLResponse:
        return HTMLResponse(f"<h1>{TITLE}</h1>")

    @stray.get("/test-only/progress")
    def html_progress(_v: object = Depends(requires("read"))) -> HTMLResponse:
        return HTMLResponse("<p>42</p>")

    app.include_router(stray)
    found = [e for e in endpoints(app) if e.path.startswith("/test-only")]
    result = sweep(Caller(context, client, hostile.seeded), found, Role.AUDITOR)
    assert result.problems == [
        "GET /test-only/progress as auditor (200): 'text/html; charset=utf-8', not JSON",
        "GET /test-only/unsafe as auditor (200): unescaped ['<script>alert(']",
    ]
