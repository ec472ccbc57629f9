"""The contacts pages: search, masking per role, import with its row report, a person's consent history and
the staff opt-out form."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from broadcaster.contacts.importer import ImportReport
from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry, Contact
from broadcaster.devices import Platform, register_token
from consent import ledger
from tests.broadcaster.web.conftest import Browser
from tests.broadcaster.web.records_fixtures import (
    HOSTILE_EMAIL,
    HOSTILE_NAME,
    HOSTILE_PHONE,
    add_hostile_contact,
)


def test_an_editor_sees_contacts_in_full_and_an_auditor_masked(
    browser: Callable[[str | None], Browser], context: AppContext, contacts: ImportReport
) -> None:
    contact_id = add_hostile_contact(context)
    editor = browser("bien_tap").get("/contacts")
    assert editor.status_code == 200
    assert HOSTILE_PHONE in editor.text
    assert HOSTILE_EMAIL in editor.text
    assert HOSTILE_NAME not in editor.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in editor.text
    auditor = browser("kiem_toan").get("/contacts")
    assert HOSTILE_PHONE not in auditor.text
    assert HOSTILE_EMAIL not in auditor.text
    person = browser("kiem_toan").get(f"/contacts/{contact_id}")
    assert person.status_code == 200
    assert HOSTILE_PHONE not in person.text
    assert HOSTILE_NAME not in person.text


def test_search_by_phone_in_any_spelling_and_by_segment(
    browser: Callable[[str | None], Browser], context: AppContext, contacts: ImportReport
) -> None:
    add_hostile_contact(context)
    editor = browser("bien_tap")
    found = editor.get("/contacts", params={"q": "0905 111 222"})
    assert "Kết quả (1)" in found.text
    assert "Kết quả (0)" in editor.get("/contacts", params={"q": "zzz", "segment": "citizen"}).text


def test_search_by_email_ignores_the_case_as_imports_do(
    browser: Callable[[str | None], Browser], context: AppContext, contacts: ImportReport
) -> None:
    with context.sessions.begin() as session:
        session.add(
            Contact(
                full_name="Trần Thị Lan",
                email="Lan.Tran@danang.gov.vn",
                segment="civil_servant",
                language="vi",
                tags=[],
                attributes={},
                created_at=context.clock.now(),
                updated_at=context.clock.now(),
            )
        )
    editor = browser("bien_tap")
    for query in ("lan.tran@DANANG.gov.vn", "LAN.TRAN@danang.gov.vn"):
        found = editor.get("/contacts", params={"q": query})
        assert "Kết quả (1)" in found.text
        assert "Lan.Tran@danang.gov.vn" in found.text


def test_an_editor_imports_a_file_and_reads_its_row_report(
    browser: Callable[[str | None], Browser], context: AppContext
) -> None:
    editor = browser("bien_tap")
    editor.get("/contacts/import")
    content = "full_name,phone,segment\nNguyễn Văn An,0905123456,citizen\nTrần Bình,12,citizen\n"
    response = editor.client.post(
        "/contacts/import",
        data={"csrf_token": editor.csrf},
        files={"file": ("danh-ba.csv", content.encode(), "text/csv")},
    )
    assert response.status_code == 200, response.text
    assert "Đã tạo: 1" in response.text
    assert '<th scope="row">3</th>' in response.text


def test_an_import_of_another_kind_of_file_is_refused_and_an_auditor_may_not_import(
    browser: Callable[[str | None], Browser],
) -> None:
    editor = browser("bien_tap")
    editor.get("/contacts/import")
    refused = editor.client.post(
        "/contacts/import", data={"csrf_token": editor.csrf}, files={"file": ("a.txt", b"x", "text/plain")}
    )
    assert refused.status_code == 422
    auditor = browser("kiem_toan")
    assert auditor.get("/contacts/import").status_code == 403


def test_staff_record_an_opt_out_with_a_reason(
    browser: Callable[[str | None], Browser], context: AppContext
) -> None:
    contact_id = add_hostile_contact(context)
    editor = browser("bien_tap")
    editor.get(f"/contacts/{contact_id}")
    form = {"channel": "sms", "purpose": ledger.PUBLIC_INFORMATION}
    missing = editor.post(f"/contacts/{contact_id}/withdraw", {**form, "reason": " "})
    assert missing.status_code == 422
    done = editor.post(f"/contacts/{contact_id}/withdraw", {**form, "reason": "Đơn tại bộ phận một cửa"})
    assert done.status_code == 303
    with context.readers() as session:
        assert ledger.current(session, "sms", HOSTILE_PHONE, ledger.PUBLIC_INFORMATION) is False
        assert session.scalar(select(AuditEntry).where(AuditEntry.action.like("consent.%"))) is not None
    page = editor.get(f"/contacts/{contact_id}")
    assert "Đơn tại bộ phận một cửa" in page.text
    auditor = browser("kiem_toan")
    auditor.get(f"/contacts/{contact_id}")
    refused = auditor.post(f"/contacts/{contact_id}/withdraw", {**form, "reason": "x"})
    assert refused.status_code == 403


def test_a_person_page_lists_their_push_devices_without_the_whole_token(
    browser: Callable[[str | None], Browser], context: AppContext, contacts: ImportReport
) -> None:
    token = "cX1a2b3c4d5e6f7g:APA91bH" + "k" * 120
    with context.sessions.begin() as session:
        contact_id = session.scalars(select(Contact.id).order_by(Contact.id)).first()
        assert contact_id is not None
        register_token(
            session, contact_id=contact_id, token=token, platform=Platform.IOS, app_version="3.1.0",
            now=context.clock.now(),
        )  # fmt: skip

    page = browser("kiem_toan").get(f"/contacts/{contact_id}")

    assert page.status_code == 200
    assert "cX1a2b3c…" in page.text
    assert token not in page.text
    assert "3.1.0" in page.text
    other = browser("kiem_toan").get(f"/contacts/{contact_id + 1}")
    assert (
        "Chưa có thiết bị nào đăng ký nhận thông báo đẩy." in other.text
        or "No device is registered" in other.text
    )


def test_staff_record_a_push_opt_out_for_a_person_with_a_device(
    browser: Callable[[str | None], Browser], context: AppContext
) -> None:
    contact_id = add_hostile_contact(context)
    editor = browser("bien_tap")
    form = {"channel": "push", "purpose": ledger.PUBLIC_INFORMATION, "reason": "Yêu cầu qua tổng đài 1022"}
    editor.get(f"/contacts/{contact_id}")
    without_device = editor.post(f"/contacts/{contact_id}/withdraw", form)
    assert without_device.status_code == 422  # no device: push is not one of the person's channels yet
    with context.sessions.begin() as session:
        register_token(
            session, contact_id=contact_id, token="f" * 64, platform=Platform.IOS, app_version=None,
            now=context.clock.now(),
        )  # fmt: skip

    done = editor.post(f"/contacts/{contact_id}/withdraw", form)

    assert done.status_code == 303
    with context.readers() as session:
        assert ledger.current(session, "push", HOSTILE_PHONE, ledger.PUBLIC_INFORMATION) is False
        assert ledger.current(session, "sms", HOSTILE_PHONE, ledger.PUBLIC_INFORMATION) is None
    assert "Yêu cầu qua tổng đài 1022" in editor.get(f"/contacts/{contact_id}").text
