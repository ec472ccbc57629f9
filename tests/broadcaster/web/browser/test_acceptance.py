"""The web application's acceptance scenario, in Chromium through the real server, with the sandbox SMTP
server and SMSC and the embedded engine: an editor imports contacts and loads and submits a new version, an approver
approves it from the preview, the editor sends it and watches the dashboard count without a reload, and an
auditor exports the message log, masked. On the way it saves the README's screenshots.

People act with labels and roles (``get_by_label``, ``get_by_role``), so the pages' accessibility is checked
too. Nothing sleeps: every wait is a Playwright expectation or ``server.wait_until_received``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Page, expect

from tests.broadcaster.delivery.workdir_files import citizen, citizens, write_contacts_csv
from tests.broadcaster.web.browser.conftest import DESKTOP, PHONE, WebServer, screenshots, sign_in

PEOPLE = 6  # contacts imported with a mobile number and an e-mail: each gets an SMS and an e-mail
RECEIVED = 2 * PEOPLE + 1  # and one more with a landline number: an e-mail only…
PLANNED = RECEIVED + 1  # …and an SMS planned for them as excluded (no mobile number), counted as done
SENDING_TIMEOUT_MS = 120_000  # a loaded 2-core machine: sending and the 2 s polling may take a while
NEW_TITLE = "Thông báo tiếp nhận hồ sơ trực tuyến (bản sửa)"


def _import_contacts(page: Page, csv_file: Path) -> None:
    page.get_by_role("link", name="Danh bạ", exact=True).click()
    page.get_by_role("link", name="Nhập tệp danh bạ").click()
    page.get_by_label("Tệp (CSV mã UTF-8, hoặc XLSX)").set_input_files(csv_file)
    page.get_by_role("button", name="Nhập", exact=True).click()
    expect(page.get_by_role("heading", level=2)).to_contain_text(csv_file.name)
    expect(page.get_by_text(f"Số dòng đã đọc: {PEOPLE + 1}")).to_be_visible()
    expect(page.get_by_text(f"Đã tạo: {PEOPLE + 1}")).to_be_visible()
    expect(page.get_by_role("heading", name="Lỗi (1)")).to_be_visible()  # the row with a landline number
    expect(page.get_by_role("row").filter(has_text="0236")).to_contain_text("cảnh báo")
    expect(page.get_by_role("row").filter(has_text="0236")).to_contain_text("số cố định: không nhận được SMS")
    screenshots(page, "contacts-import")


def _load_and_submit_a_new_version(page: Page, campaign_id: str) -> None:
    page.get_by_role("link", name="Chiến dịch", exact=True).click()
    page.get_by_role("link", name=re.compile("Thông báo thử nghiệm")).first.click()
    page.get_by_role("link", name="Nạp phiên bản mới").click()
    text_area = page.get_by_label(re.compile("^Tệp chiến dịch campaigns/"))
    definition = yaml.safe_load(text_area.input_value())
    assert definition["id"] == campaign_id
    definition["title"] = NEW_TITLE
    text_area.fill(yaml.safe_dump(definition, allow_unicode=True, sort_keys=False))
    page.get_by_role("button", name="Kiểm tra và nạp").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(NEW_TITLE)
    screenshots(page, "campaign", phone=True)

    page.get_by_role("link", name="Thay đổi").first.click()
    expect(page.get_by_text(f"title: {NEW_TITLE}")).to_be_visible()
    screenshots(page, "diff")
    page.go_back()

    page.get_by_role("link", name="Xem trước và quyết định phiên bản 2").click()
    page.get_by_label("Ghi chú cho người phê duyệt (không bắt buộc)").fill("Sửa tiêu đề theo góp ý.")
    page.get_by_role("button", name="Trình phiên bản 2").click()
    expect(page.get_by_role("status")).to_be_visible()


def _approve(page: Page, server: WebServer, campaign_id: str) -> None:
    sign_in(page, server, "phe_duyet")
    page.goto(f"{server.url}/campaigns/{campaign_id}")
    page.get_by_role("link", name="Xem trước và quyết định phiên bản 2").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(NEW_TITLE)
    content_hash = page.locator("code.hash").inner_text()
    assert re.fullmatch(r"[0-9a-f]{64}", content_hash), content_hash
    expect(page.get_by_role("region", name=re.compile("^SMS qua"))).to_contain_text(f"Người nhận: {PEOPLE}")
    expect(page.get_by_role("region", name=re.compile("^Thư điện tử qua"))).to_contain_text(
        f"Người nhận: {PEOPLE + 1}"
    )
    expect(page.get_by_role("heading", name="Tin mẫu")).to_have_count(2)
    expect(page.get_by_role("region", name="Quyết định")).to_contain_text(content_hash)
    page.get_by_label("Ghi chú (không bắt buộc)").fill("Đồng ý.")
    page.get_by_role("button", name="Phê duyệt phiên bản 2").scroll_into_view_if_needed()
    screenshots(page, "preview")
    page.get_by_role("button", name="Phê duyệt phiên bản 2").click()
    expect(page.get_by_role("status")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Phiên bản đã duyệt: 2")


def _send_and_watch(page: Page, server: WebServer, campaign_id: str) -> None:
    page.goto(f"{server.url}/campaigns/{campaign_id}")
    page.get_by_role("button", name="Gửi ngay").click()
    expect(page.get_by_role("status")).to_be_visible()

    # The run waits in the queue until the engine starts: the dashboard is open while it runs.
    page.get_by_role("link", name="Tổng quan", exact=True).click()
    live = page.locator("[data-progress-url]")
    expect(live).to_have_count(1)
    progress = live.locator("[data-progress-text]")
    before = progress.inner_text()
    assert before != f"{PLANNED} / {PLANNED}", before
    page.evaluate("window.notReloaded = true")
    screenshots(page, "dashboard-running", phone=True)

    server.start_engine()
    server.wait_until_received(RECEIVED, timeout=SENDING_TIMEOUT_MS / 1000)
    # The page's own script redraws the figures from the progress JSON; the marker proves no reload.
    expect(progress).to_have_text(f"{PLANNED} / {PLANNED}", timeout=SENDING_TIMEOUT_MS)
    figures = live.locator("[data-figures] li")
    expect(figures).to_have_count(2)
    expect(figures.first).to_have_text(f"Thư điện tử: đã gửi {PEOPLE + 1} · đã đến nơi 0 · thất bại 0")
    # An SMS counts as sent until its delivery receipt arrives, then as delivered.
    sms = re.fullmatch(r"SMS: đã gửi (\d+) · đã đến nơi (\d+) · thất bại 0", figures.last.inner_text())
    assert sms is not None, figures.last.inner_text()
    assert int(sms[1]) + int(sms[2]) == PEOPLE, figures.last.inner_text()
    assert page.evaluate("window.notReloaded === true")
    screenshots(page, "dashboard-finished", phone=True)

    # On a phone each row is a block: nothing to scroll sideways.
    page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
    assert page.locator(".table-wrap").evaluate("(wrap) => wrap.scrollWidth <= wrap.clientWidth")
    expect(page.locator("td[data-label='Lượt gửi gần nhất']")).to_have_count(1)  # the cell names its column
    page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})


def _export_masked_messages(page: Page, server: WebServer, tmp_path: Path) -> None:
    sign_in(page, server, "kiem_toan")
    page.get_by_role("link", name="Tin nhắn", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    screenshots(page, "messages")
    page.get_by_label("Định dạng").select_option("csv")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Xuất các tin nhắn khớp").click()
    target = tmp_path / "tin-nhan.csv"
    download_info.value.save_as(target)
    exported = target.read_text(encoding="utf-8-sig")
    assert exported.count("\n") >= RECEIVED  # a header and a line per message
    for person in citizens(PEOPLE + 1):
        national = person["phone"]  # 0912000001
        for spelling in (national, "84" + national[1:], "+84" + national[1:]):
            assert spelling not in exported, f"{spelling} is in the auditor's export"
        assert person["email"] not in exported, f"{person['email']} is in the auditor's export"
        assert person["full_name"] not in exported
    assert "****" in exported  # the masked forms are there
    assert re.search(r"c\*+@example\.vn", exported), exported[:500]


def _audit_reports_and_admin(page: Page, server: WebServer, new_page: Callable[..., Page]) -> None:
    page.get_by_role("link", name="Kiểm toán", exact=True).click()
    page.get_by_role("button", name="Kiểm tra chuỗi nhật ký").click()
    expect(page.get_by_role("heading", name="Kết quả kiểm tra chuỗi")).to_be_visible()
    screenshots(page, "audit")

    page.get_by_role("link", name="Báo cáo", exact=True).click()
    today = datetime.now(UTC).date()
    page.get_by_label("Từ ngày").fill((today - timedelta(days=1)).isoformat())
    page.get_by_label("Đến ngày").fill((today + timedelta(days=1)).isoformat())
    page.get_by_role("button", name="Lập báo cáo").click()
    images = page.locator("main figure img")
    expect(images).not_to_have_count(0)
    for image in images.all():
        # The charts are drawn on request (matplotlib): slow on a loaded machine, so a generous wait.
        expect(image).to_have_js_property("complete", True, timeout=60_000)
        expect(image).not_to_have_js_property("naturalWidth", 0)
    page.locator("main figure").first.scroll_into_view_if_needed()
    screenshots(page, "reports")

    admin = new_page()
    sign_in(admin, server, "quan_tri")
    admin.get_by_role("link", name="Quản trị", exact=True).click()
    expect(admin.get_by_role("heading", level=1)).to_be_visible()
    screenshots(admin, "admin")


@pytest.mark.slow
def test_import_load_submit_approve_send_watch_and_export_masked(
    server: WebServer, page: Page, new_page: Callable[..., Page], tmp_path: Path
) -> None:
    campaign_id = server.pipeline.load_campaign(server.pipeline.write_campaign())  # version 1, a draft
    csv_file = write_contacts_csv(
        tmp_path / "danh-ba-phuong.csv", [*citizens(PEOPLE), citizen(PEOPLE + 1, phone="02363822222")]
    )

    sign_in(page, server, "bien_tap")
    _import_contacts(page, csv_file)
    _load_and_submit_a_new_version(page, campaign_id)

    approver = new_page()
    _approve(approver, server, campaign_id)

    _send_and_watch(page, server, campaign_id)
    assert server.received() == RECEIVED

    auditor = new_page()
    _export_masked_messages(auditor, server, tmp_path)
    _audit_reports_and_admin(auditor, server, new_page)
