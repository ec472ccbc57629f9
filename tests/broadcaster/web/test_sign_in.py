"""Sign-in, lock-out, sign-out, session fixation, CSRF and the SSO header."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from broadcaster.clock import FrozenClock
from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry, WebSession
from broadcaster.web.auth import SESSION_COOKIE, token_hash
from tests.broadcaster.web.conftest import PASSWORD, Browser


def test_anonymous_pages_redirect_to_the_sign_in_form(browser: Callable[[str | None], Browser]) -> None:
    person = browser(None)
    response = person.client.get("/?x=1", headers={"Accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=%2F%3Fx%3D1"
    form = person.get("/sign-in")
    assert "Đăng nhập" in form.text


def test_a_good_password_opens_a_session_and_a_wrong_one_is_refused(
    browser: Callable[[str | None], Browser], context: AppContext
) -> None:
    person = browser(None)
    wrong = person.client.post("/sign-in", data={"login": "bien_tap", "password": "sai-mat-khau-roi"})
    assert wrong.status_code == 401
    assert "Sai tên đăng nhập hoặc mật khẩu." in wrong.text
    assert SESSION_COOKIE not in person.client.cookies

    person.sign_in("bien_tap")
    page = person.get("/")
    assert page.status_code == 200
    assert "bien_tap" in page.text
    with context.readers() as session:
        actions = list(session.scalars(select(AuditEntry.action).where(AuditEntry.subject_id == "bien_tap")))
    assert "web.sign_in_refused" in actions
    assert "web.sign_in" in actions


def test_repeated_failures_lock_the_account_even_for_the_right_password(
    browser: Callable[[str | None], Browser], context: AppContext, clock: FrozenClock
) -> None:
    person = browser(None)
    attempts = context.settings.web.lockout_attempts
    codes = [
        person.client.post("/sign-in", data={"login": "phe_duyet", "password": f"sai-{n}"}).status_code
        for n in range(attempts)
    ]
    assert codes == [401] * (attempts - 1) + [423]
    right = person.client.post("/sign-in", data={"login": "phe_duyet", "password": PASSWORD})
    assert right.status_code == 423
    assert "đang bị khóa" in right.text

    clock.advance(timedelta(minutes=context.settings.web.lockout_minutes, seconds=1))
    person.sign_in("phe_duyet")


def test_a_session_id_planted_before_sign_in_is_never_promoted(
    browser: Callable[[str | None], Browser], context: AppContext
) -> None:
    person = browser(None)
    planted = "attacker-chosen-token"
    person.client.cookies.set(SESSION_COOKIE, planted, domain="testserver.local")
    person.sign_in("bien_tap")
    assert person.client.cookies.get(SESSION_COOKIE) != planted
    with context.readers() as session:
        assert session.get(WebSession, token_hash(planted)) is None
    victim = browser(None)
    victim.client.cookies.set(SESSION_COOKIE, planted, domain="testserver.local")
    response = victim.client.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303


def test_sign_out_needs_the_csrf_token_and_ends_the_session(browser: Callable[[str | None], Browser]) -> None:
    person = browser("bien_tap")
    token = person.client.cookies.get(SESSION_COOKIE)
    forged = person.client.post("/sign-out", data={}, follow_redirects=False)
    assert forged.status_code == 403
    assert person.get("/").status_code == 200

    done = person.post("/sign-out")
    assert done.status_code == 303
    replay = browser(None)
    replay.client.cookies.set(SESSION_COOKIE, str(token))
    assert replay.client.get("/", headers={"Accept": "text/html"}, follow_redirects=False).status_code == 303


def test_an_idle_session_ends(
    browser: Callable[[str | None], Browser], context: AppContext, clock: FrozenClock
) -> None:
    person = browser("kiem_toan")
    clock.advance(timedelta(minutes=context.settings.web.session_idle_minutes, seconds=1))
    assert person.client.get("/", headers={"Accept": "text/html"}, follow_redirects=False).status_code == 303


def test_next_never_leaves_the_site(browser: Callable[[str | None], Browser]) -> None:
    person = browser(None)
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        response = person.client.post(
            "/sign-in",
            data={"login": "bien_tap", "password": PASSWORD, "next": target},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/"


def test_the_sso_header_is_believed_only_from_the_trusted_proxy(
    browser: Callable[[str | None], Browser], context: AppContext
) -> None:
    context.settings.web.sso_header = "X-Remote-User"
    context.settings.web.sso_trusted_proxies = ["10.9.9.9"]
    person = browser(None)
    untrusted = person.client.get("/sign-in", headers={"X-Remote-User": "bien_tap"}, follow_redirects=False)
    assert untrusted.status_code == 200  # the form: testclient is not the proxy

    context.settings.web.sso_trusted_proxies = ["testclient"]
    trusted = person.client.get("/sign-in", headers={"X-Remote-User": "bien_tap"}, follow_redirects=False)
    assert trusted.status_code == 303
    assert person.get("/").status_code == 200
    unknown = browser(None).client.get("/sign-in", headers={"X-Remote-User": "ai_do"}, follow_redirects=False)
    assert unknown.status_code == 200


def test_pages_carry_the_security_headers(browser: Callable[[str | None], Browser]) -> None:
    response = browser("bien_tap").get("/")
    headers = response.headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
