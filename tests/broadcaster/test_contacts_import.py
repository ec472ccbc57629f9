"""Importing contact files into the database: normalised storage, merges, all-or-nothing, audit, opt-outs kept."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcaster.clock import FrozenClock
from broadcaster.contacts.importer import ContactsImportError, ImportReport, import_contacts
from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry, Contact, ContactImport
from consent import ledger
from consent.models import ConsentEvent
from tests.broadcaster.conftest import ADMIN_LOGIN, FIXTURES, database_dump
from tests.broadcaster.opt_outs import opt_out

HEADER = "external_id,full_name,phone,email,segment,district,tags\n"


def _write_csv(directory: Path, name: str, rows: str, header: str = HEADER) -> Path:
    path = directory / name
    path.write_bytes((header + rows).encode("utf-8"))
    return path


def _contacts(context: AppContext) -> dict[str, Contact]:
    """Stored contacts by external id (or by name when they have none)."""
    with context.sessions() as session:
        return {
            c.external_id or c.full_name: c for c in session.scalars(select(Contact).order_by(Contact.id))
        }


def _import(context: AppContext, path: Path, *, actor: str = ADMIN_LOGIN) -> ImportReport:
    with context.sessions.begin() as session:
        return import_contacts(session, path=path, actor=actor, clock=context.clock)


def test_csv_with_awkward_vietnamese_numbers_is_stored_normalised(
    context: AppContext, contacts: ImportReport
) -> None:
    assert (contacts.total_rows, contacts.created, contacts.updated, contacts.skipped) == (15, 11, 0, 4)
    assert contacts.merges == []
    stored = _contacts(context)
    assert len(stored) == 11
    phones = {key: (c.phone, c.phone_kind, c.carrier) for key, c in stored.items()}
    assert phones["DN-000001"] == ("+84912345678", "mobile", "Vinaphone")
    assert phones["DN-000002"] == ("+84389123456", "mobile", "Viettel")  # old 0168 prefix, national form
    assert phones["DN-000003"] == ("+84706123456", "mobile", "MobiFone")  # old 0120 prefix, +84 form
    assert phones["DN-000004"][0] == "+84905123456"  # full-width digits
    assert phones["DN-000005"][0] == "+84935111222"  # 00 84 prefix
    assert phones["DN-000006"][0] == "+84983456789"  # +84 (0) prefix
    assert phones["DN-000007"][:2] == ("+842363822123", "fixed")  # landline kept, flagged
    assert phones["DN-000009"][0] is None  # invalid number, kept for the e-mail
    # An NFD name is stored NFC, whitespace tidied; e-mail domain lower-cased; tags and extra columns kept.
    first = stored["DN-000001"]
    assert first.full_name == "Nguyễn Văn An"
    assert unicodedata.is_normalized("NFC", first.full_name)
    assert stored["DN-000002"].full_name == "Trần Thị Bích"
    assert first.email == "an.nguyen@gmail.com"
    assert first.tags == ["ban-tin", "cchc"]
    assert first.attributes == {"Ghi chú": "gọi giờ hành chính"}
    assert (first.district, first.ward, first.segment, first.language) == (
        "Hải Châu",
        "Thạch Thang",
        "citizen",
        "vi",
    )
    with context.readers() as session:  # an import grants and withdraws nothing
        assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0
    # Every row problem is in the report with its spreadsheet row.
    assert {(p.row, p.column, p.severity) for p in contacts.problems} >= {
        (9, "phone", "error"),
        (14, "full_name", "error"),
        (8, "phone", "warning"),
    }


def test_xlsx_import(context: AppContext, import_fixture: Callable[..., ImportReport]) -> None:
    report = import_fixture("danh-ba.xlsx")
    assert report.created == len(_contacts(context)) > 0
    stored = _contacts(context)
    assert stored["1001"].phone == "+84912345678"  # a number cell that lost its leading 0
    assert stored["1001"].full_name == "Nguyễn Văn Bình"  # NFD in the workbook
    assert stored["1004"].phone == "+84389123457"  # old 0168 prefix
    assert stored["1002"].attributes == {"Chức vụ": "Chuyên viên"}


def test_semicolon_csv_without_bom(context: AppContext, import_fixture: Callable[..., ImportReport]) -> None:
    report = import_fixture("danh-ba-no-bom.csv")
    assert report.created == 3
    stored = _contacts(context)
    assert stored["DN-100001"].agency == "Sở Văn hóa, Thể thao và Du lịch"
    assert stored["DN-100002"].phone == "+84323456789"  # old 0162 prefix, +84 form with spaces


def test_reimport_merges_by_external_id_and_reports_it(
    context: AppContext, contacts: ImportReport, import_fixture: Callable[..., ImportReport]
) -> None:
    ids_before = {key: c.id for key, c in _contacts(context).items()}
    again = import_fixture("danh-ba.csv")
    assert (again.created, again.updated, again.skipped) == (0, 11, 4)
    assert len(again.merges) == 11
    by_row = {m.row: m for m in again.merges}
    assert by_row[2].matched_by == "external_id"
    assert by_row[2].contact_id == ids_before["DN-000001"]
    # The row without an external id is matched by name and phone.
    assert by_row[17].matched_by == "name+phone"
    assert {key: c.id for key, c in _contacts(context).items()} == ids_before


def test_merge_by_name_and_phone_in_another_format(
    context: AppContext, contacts: ImportReport, tmp_path: Path
) -> None:
    before = _contacts(context)["Lý Công Minh"]
    # Same person: NFD, upper-case name, and the number in international form with dots.
    name = unicodedata.normalize("NFD", "LÝ CÔNG MINH")
    path = _write_csv(tmp_path, "cap-nhat.csv", f",{name},+84 599.123.456,,citizen,Sơn Trà,hoi-nghi\n")
    report = _import(context, path)
    assert (report.created, report.updated) == (0, 1)
    assert [(m.row, m.contact_id, m.matched_by) for m in report.merges] == [(2, before.id, "name+phone")]
    with context.sessions() as session:
        after = session.get(Contact, before.id)
    assert after is not None
    assert after.district == "Sơn Trà"
    assert after.tags == ["hoi-nghi"]


def test_merge_by_name_and_email(context: AppContext, tmp_path: Path) -> None:
    first = _write_csv(tmp_path, "a.csv", ",Trương Thị Hạnh,,hanh.truong@danang.gov.vn,civil_servant,,\n")
    second = _write_csv(tmp_path, "b.csv", ",Trương Thị Hạnh,0905 222 333,hanh.truong@DaNang.Gov.VN,,,\n")
    assert _import(context, first).created == 1
    report = _import(context, second)
    assert (report.created, report.updated) == (0, 1)
    assert report.merges[0].matched_by == "name+email"
    stored = _contacts(context)["Trương Thị Hạnh"]
    assert (stored.phone, stored.segment) == ("+84905222333", "civil_servant")


def test_same_phone_different_name_is_another_person(
    context: AppContext, contacts: ImportReport, tmp_path: Path
) -> None:
    path = _write_csv(tmp_path, "c.csv", ",Lý Thị Minh,0599123456,,citizen,,\n")
    report = _import(context, path)
    assert (report.created, report.updated, report.merges) == (1, 0, [])
    assert len(_contacts(context)) == 12


def test_duplicate_rows_within_a_file_make_one_contact(context: AppContext, tmp_path: Path) -> None:
    path = _write_csv(
        tmp_path,
        "trung.csv",
        ",Phan Văn Hùng,0912 111 222,,citizen,,a\n,Phan Văn Hùng,+84912111222,,citizen,,b\n",
    )
    report = _import(context, path)
    assert (report.created, report.updated) == (1, 0)
    assert [m.matched_by for m in report.merges] == ["earlier row (name+phone)"]
    assert _contacts(context)["Phan Văn Hùng"].tags == ["a", "b"]


def test_opt_outs_survive_a_reimport(
    context: AppContext, contacts: ImportReport, import_fixture: Callable[..., ImportReport]
) -> None:
    with context.sessions.begin() as session:
        phone = opt_out(session, "DN-000001", "sms", at=context.clock.now())
        email = opt_out(session, "DN-000001", "email", at=context.clock.now(), purpose="advertising")
    import_fixture("danh-ba.csv")
    with context.readers() as session:
        assert ledger.current(session, "sms", phone, "public_information") is False
        assert ledger.current(session, "email", email, "public_information") is None
        assert ledger.current(session, "email", email, "advertising") is False


def test_import_is_audited_and_recorded(
    context: AppContext, contacts: ImportReport, clock: FrozenClock
) -> None:
    sha256 = hashlib.sha256((FIXTURES / "danh-ba.csv").read_bytes()).hexdigest()
    with context.sessions() as session:
        batch = session.get(ContactImport, contacts.import_id)
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "contacts.import")).one()
        linked = session.scalars(select(Contact).where(Contact.import_id == contacts.import_id)).all()
    assert batch is not None
    assert (batch.filename, batch.sha256, batch.imported_by, batch.imported_at) == (
        "danh-ba.csv",
        sha256,
        ADMIN_LOGIN,
        clock.now(),
    )
    assert (batch.rows_total, batch.created, batch.updated, batch.skipped) == (15, 11, 0, 4)
    assert batch.report["created"] == 11
    assert len(batch.report["problems"]) == len(contacts.problems)
    assert (entry.actor, entry.subject_type, entry.subject_id, entry.at) == (
        ADMIN_LOGIN,
        "contact_import",
        str(contacts.import_id),
        clock.now(),
    )
    assert entry.details["sha256"] == sha256
    assert (entry.details["created"], entry.details["skipped"]) == (11, 4)
    assert len(linked) == 11


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing-name-column.csv", "full_name"),
        ("not-utf8.csv", "UTF-8"),
        ("khong-ton-tai.csv", "cannot be read"),
    ],
)
def test_a_fatal_error_imports_nothing(
    context: AppContext, contacts: ImportReport, name: str, message: str
) -> None:
    before = database_dump(context.engine)
    with pytest.raises(ContactsImportError, match=message) as caught:
        _import(context, FIXTURES / name)
    assert "Nothing was imported" in str(caught.value)
    assert database_dump(context.engine) == before


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("danh-ba.xls", b"\xd0\xcf\x11\xe0", "old Excel format"),
        ("trong.csv", b"", "is empty"),
        ("hong.xlsx", b"PK\x03\x04 not really a workbook", "not a readable XLSX workbook"),
    ],
)
def test_unreadable_files_import_nothing(
    context: AppContext, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    before = database_dump(context.engine)
    with pytest.raises(ContactsImportError, match=message):
        _import(context, path)
    assert database_dump(context.engine) == before
