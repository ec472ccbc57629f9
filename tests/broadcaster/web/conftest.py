"""The web application on a test working directory: one user per role, each with a password, and a
``TestClient`` per person (``browser``), signed in through the real sign-in form."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from broadcaster import i18n
from broadcaster.context import AppContext
from broadcaster.users import add_user, set_password
from broadcaster.vocabulary import Role
from broadcaster.web.app import create_app
from tests.broadcaster.conftest import ADMIN_LOGIN

PASSWORD = "mat-khau-du-dai-2026"
# login → role; ADMIN_LOGIN is the working directory's first admin.
PEOPLE = {
    ADMIN_LOGIN: Role.ADMIN,
    "bien_tap": Role.EDITOR,
    "phe_duyet": Role.APPROVER,
    "phe_duyet_2": Role.APPROVER,
    "kiem_toan": Role.AUDITOR,
}
LOGIN_OF = {
    Role.ADMIN: ADMIN_LOGIN,
    Role.EDITOR: "bien_tap",
    Role.APPROVER: "phe_duyet",
    Role.AUDITOR: "kiem_toan",
}
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


@pytest.fixture(autouse=True)
def vietnamese(monkeypatch: pytest.MonkeyPatch, english: None) -> Iterator[None]:
    """The web pages are read in the installation's default language, Vietnamese (the rest of the suite is
    English: ``tests/broadcaster/conftest.py::english``)."""
    monkeypatch.setenv("LANG", "vi_VN.UTF-8")
    with i18n.using("vi"):
        yield


@pytest.fixture
def people(context: AppContext) -> dict[str, Role]:
    with context.sessions.begin() as session:
        for login, role in PEOPLE.items():
            if login != ADMIN_LOGIN:
                add_user(session, actor=ADMIN_LOGIN, login=login, role=role, clock=context.clock)
            set_password(session, actor=ADMIN_LOGIN, login=login, password=PASSWORD, clock=context.clock)
    return PEOPLE


class Browser:
    """One person's client: cookies kept, the CSRF token of the last page read."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self.client.get(path, headers={"Accept": "text/html"}, **kwargs)
        found = _CSRF_META.search(response.text)
        if found and found.group(1):
            self.csrf = found.group(1)
        return response

    def sign_in(self, login: str, password: str = PASSWORD) -> None:
        response = self.client.post(
            "/sign-in", data={"login": login, "password": password, "next": "/"}, follow_redirects=False
        )
        assert response.status_code == 303, response.text
        self.get("/")
        assert self.csrf

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        form = {"csrf_token": self.csrf, **(data or {})}
        response: httpx.Response = self.client.post(path, data=form, follow_redirects=False, **kwargs)
        return response


@pytest.fixture
def app_client(context: AppContext, people: dict[str, Role]) -> Iterator[Callable[[], TestClient]]:
    """``app_client()``: a fresh client (its own cookie jar) of one app on the test working directory."""
    app = create_app(context)
    clients: list[TestClient] = []

    def make() -> TestClient:
        client = TestClient(app, base_url="http://testserver")
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def browser(app_client: Callable[[], TestClient]) -> Callable[[str | None], Browser]:
    """``browser("bien_tap")``: a client signed in as that login; ``browser(None)``: anonymous."""

    def make(login: str | None) -> Browser:
        person = Browser(app_client())
        if login is not None:
            person.sign_in(login)
        return person

    return make
