"""The audit pages: search by action family and recipient hash, chain verification, exports."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text

from broadcaster.context import AppContext
from tests.broadcaster.audit.conftest import triggers_off
from tests.broadcaster.web.conftest import Browser
from tests.broadcaster.web.records_fixtures import HOSTILE_NAME, HOSTILE_PHONE, add_hostile_contact


def test_search_by_family_lists_the_entries_and_an_auditor_may_read(
    browser: Callable[[str | None], Browser],
) -> None:
    auditor = browser("kiem_toan")
    page = auditor.get("/audit", params={"action": "user."})
    assert page.status_code == 200
    assert "user.add" in page.text
    assert "web.sign_in" not in page.text
    exact = auditor.get("/audit", params={"action": "user.password_set", "actor": "nobody"})
    assert "user.password_set" not in exact.text.split("Kết quả")[1]


def test_a_bad_date_names_its_field(browser: Callable[[str | None], Browser]) -> None:
    page = browser("kiem_toan").get("/audit", params={"to": "hôm qua"})
    assert page.status_code == 400
    assert "Đến ngày" in page.text


def test_verify_reports_an_intact_chain_then_the_first_break(
    browser: Callable[[str | None], Browser], context: AppContext
) -> None:
    auditor = browser("kiem_toan")
    auditor.get("/audit")
    intact = auditor.post("/audit/verify")
    assert intact.status_code == 200
    assert "Chuỗi nhật ký còn nguyên vẹn." in intact.text
    engine = context.engine
    triggers_off(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET actor = 'ke_gian' WHERE id = 2"))
    broken = auditor.post("/audit/verify")
    assert "Mục #2:" in broken.text
    assert "đã bị sửa sau khi ghi" in broken.text


def test_exports_name_people_by_hash_only(
    browser: Callable[[str | None], Browser], context: AppContext
) -> None:
    contact_id = add_hostile_contact(context)
    editor = browser("bien_tap")
    editor.get(f"/contacts/{contact_id}")
    editor.post(
        f"/contacts/{contact_id}/withdraw", {"channel": "sms", "purpose": "advertising", "reason": "đơn"}
    )
    found = editor.get("/audit", params={"action": "consent."})
    assert "consent.withdraw" in found.text
    assert editor.get("/audit", params={"recipient": "0905111222"}).status_code == 200
    exported = editor.post("/audit/export", {"format": "csv", "action": "consent."})
    assert exported.status_code == 200
    assert "consent.withdraw" in exported.text
    assert HOSTILE_PHONE not in exported.text
    assert "0905111222" not in exported.text
    assert HOSTILE_NAME not in found.text


def test_markup_in_a_reason_is_escaped_in_the_log(
    browser: Callable[[str | None], Browser], context: AppContext
) -> None:
    contact_id = add_hostile_contact(context)
    editor = browser("bien_tap")
    editor.get(f"/contacts/{contact_id}")
    form = {"channel": "email", "purpose": "advertising", "reason": HOSTILE_NAME}
    assert editor.post(f"/contacts/{contact_id}/withdraw", form).status_code == 303
    page = editor.get("/audit", params={"action": "consent."})
    assert HOSTILE_NAME not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
