"""In a real browser: signing in with the keyboard alone, the dashboard on a desktop and a phone, signing out,
and the language switch."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.broadcaster.web.browser.conftest import WebServer, screenshots, sign_in
from tests.broadcaster.web.conftest import PASSWORD


def _focused_id(page: Page) -> str:
    return str(page.evaluate("document.activeElement ? document.activeElement.id : ''"))


def _tab_to(page: Page, element_id: str, *, limit: int = 20) -> None:
    """Press Tab until ``#element_id`` has the focus (fails when it cannot be reached in ``limit`` steps)."""
    for _ in range(limit):
        if _focused_id(page) == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"#{element_id} not reachable with Tab; focus is on #{_focused_id(page)}")


def test_sign_in_with_the_keyboard_alone_see_the_dashboard_and_sign_out(
    server: WebServer, page: Page
) -> None:
    page.goto(f"{server.url}/")
    expect(page).to_have_url(f"{server.url}/sign-in?next=%2F")
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    screenshots(page, "sign-in", phone=True)

    _tab_to(page, "login")
    page.keyboard.type("bien_tap")
    page.keyboard.press("Tab")
    assert _focused_id(page) == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")

    expect(page).to_have_url(f"{server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Tổng quan")
    expect(page.locator(".site-header__user")).to_contain_text("bien_tap")
    screenshots(page, "dashboard", phone=True)

    page.get_by_role("button", name="Đăng xuất").click()
    expect(page).to_have_url(f"{server.url}/sign-in")
    page.goto(f"{server.url}/")
    expect(page).to_have_url(f"{server.url}/sign-in?next=%2F")  # the session is over


def test_a_wrong_password_is_shown_next_to_the_form(server: WebServer, page: Page) -> None:
    page.goto(f"{server.url}/sign-in")
    page.locator("#login").fill("bien_tap")
    page.locator("#password").fill("sai-mat-khau-roi")
    page.locator("main form button[type=submit]").click()
    expect(page.get_by_role("alert")).to_contain_text("Sai tên đăng nhập hoặc mật khẩu.")
    expect(page.locator("#login")).to_have_value("bien_tap")


def test_the_language_switch_to_english_and_back(
    server: WebServer, page: Page, new_page: Callable[..., Page]
) -> None:
    sign_in(page, server, "kiem_toan")
    expect(page.get_by_role("heading", level=1)).to_have_text("Tổng quan")

    page.locator("#language-choice").select_option("en")
    page.get_by_role("button", name="Đổi").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.reload()  # the choice is kept (a cookie of this browser)
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    other = new_page()  # …and only of this browser: someone else still gets Vietnamese
    sign_in(other, server, "bien_tap")
    expect(other.get_by_role("heading", level=1)).to_have_text("Tổng quan")

    page.locator("#language-choice").select_option("vi")
    page.get_by_role("button", name="Change").click()
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page.get_by_role("heading", level=1)).to_have_text("Tổng quan")
