"""The browser harness: a real server (uvicorn in a thread, the app ``broadcaster serve`` runs) on a test
working directory with the sandbox SMTP server and SMSC, and Chromium driven by Playwright.

- ``server``: ``server.url``, ``server.context``, ``server.pipeline`` (add contacts, load campaigns),
  ``server.start_engine()`` (the embedded engine ``broadcaster run`` uses, ticked while a test waits) and
  ``server.wait_until_received(n)`` (mails + complete SMS at the sandbox peers).
- ``page``: a fresh Chromium page at 1366×768 (its own cookies); ``new_page(width, height)`` for more people.
- ``sign_in(page, server, login)`` fills the real form; ``screenshots(page, name, phone=False)`` saves
  ``docs/screenshots/<name>-desktop.png`` and, with ``phone``, ``<name>-phone.png`` (390×844) for the README.

Without ``/usr/bin/chromium`` the tests skip, unless ``BROADCASTER_REQUIRE_SERVICES=1`` (CI installs it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import select

from broadcaster.context import AppContext
from broadcaster.db.models import User
from broadcaster.users import add_user, set_password
from broadcaster.web.app import create_app
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.delivery.conftest import make_pipeline  # noqa: F401  (the server's working directory)
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.processes import Engine
from tests.broadcaster.web.conftest import LOGIN_OF, PASSWORD
from tests.conftest import free_port, service_unavailable
from tests.peers.polling import wait_until

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[4] / "docs" / "screenshots"
DESKTOP = (1366, 768)
PHONE = (390, 844)


@dataclass
class WebServer:
    """The web application served on 127.0.0.1, with the working directory and peers behind it."""

    url: str
    pipeline: Pipeline
    context: AppContext  # the system clock, like `broadcaster serve`
    engine: Engine | None = None
    _stops: list[Callable[[], None]] = field(default_factory=list)

    def start_engine(self) -> Engine:
        """The embedded engine (planner, dispatcher, tick) of this working directory; it is ticked while
        ``wait_until_received`` waits."""
        if self.engine is None:
            self.engine = Engine(self.pipeline)
            self.engine.engine.start()
            self._stops.append(self.engine.engine.stop)
        return self.engine

    def received(self) -> int:
        """Mails at the sandbox SMTP server plus complete SMS at the sandbox SMSC."""
        sms = sum(1 for message in self.pipeline.smsc.reassembled() if message.complete)
        return len(self.pipeline.smtp.received) + sms

    def wait_until_received(self, count: int, *, timeout: float = 60.0) -> None:
        if self.engine is not None:
            self.engine.wait(
                lambda: self.received() >= count, what=f"{count} messages received", timeout=timeout
            )
        else:
            wait_until(lambda: self.received() >= count, timeout=timeout, what=f"{count} messages received")


def _add_people(context: AppContext) -> None:
    """One person per role (``tests.broadcaster.web.conftest.LOGIN_OF``), each with ``PASSWORD`` (argon2 is
    slow on purpose: no more hashes than the tests use)."""
    with context.sessions.begin() as session:
        for role, login in LOGIN_OF.items():
            if session.scalar(select(User).where(User.login == login)) is None:
                add_user(session, actor=ADMIN_LOGIN, login=login, role=role, clock=context.clock)
            set_password(session, actor=ADMIN_LOGIN, login=login, password=PASSWORD, clock=context.clock)


@pytest.fixture
def server(make_pipeline: PipelineFactory) -> Iterator[WebServer]:  # noqa: F811
    pipeline = make_pipeline()
    context = AppContext.load(pipeline.config)
    _add_people(context)
    port = free_port()
    config = uvicorn.Config(create_app(context), host="127.0.0.1", port=port, log_level="warning")
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, name="web-server", daemon=True)
    thread.start()
    wait_until(lambda: uvicorn_server.started or not thread.is_alive(), timeout=20, what="uvicorn started")
    assert uvicorn_server.started, "the web server did not start"
    web = WebServer(url=f"http://127.0.0.1:{port}", pipeline=pipeline, context=context)
    yield web
    for stop in reversed(web._stops):
        stop()
    uvicorn_server.should_exit = True
    thread.join(timeout=10)
    context.close()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        service_unavailable("chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium: Browser) -> Iterator[Callable[..., Page]]:
    """``new_page(width=1366, height=768)``: a page in a browser context of its own (one person)."""
    contexts: list[Any] = []

    def make(width: int = DESKTOP[0], height: int = DESKTOP[1]) -> Page:
        browser_context = chromium.new_context(viewport={"width": width, "height": height}, locale="vi-VN")
        browser_context.set_default_timeout(10_000)
        contexts.append(browser_context)
        return browser_context.new_page()

    yield make
    for browser_context in contexts:
        browser_context.close()


@pytest.fixture
def page(new_page: Callable[..., Page]) -> Page:
    return new_page()


def sign_in(page: Page, server: WebServer, login: str, password: str = PASSWORD) -> None:
    """Sign in through the form (what a person does); ends on the page the form leads to."""
    page.goto(f"{server.url}/sign-in")
    page.locator("#login").fill(login)
    page.locator("#password").fill(password)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(lambda url: "/sign-in" not in url)


def screenshots(page: Page, name: str, *, phone: bool = False, full_page: bool = False) -> list[Path]:
    """``docs/screenshots/<name>-desktop.png`` (1366×768) and, with ``phone``, ``<name>-phone.png`` (390×844),
    overwritten on each run. Viewport shots unless ``full_page`` (the PNGs are committed: keep them small);
    the viewport is restored afterwards."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    sizes = (("desktop", DESKTOP), ("phone", PHONE)) if phone else (("desktop", DESKTOP),)
    saved = []
    for suffix, (width, height) in sizes:
        page.set_viewport_size({"width": width, "height": height})
        target = SCREENSHOTS / f"{name}-{suffix}.png"
        page.screenshot(path=str(target), full_page=full_page)
        saved.append(target)
    if before is not None:
        page.set_viewport_size(before)
    return saved
