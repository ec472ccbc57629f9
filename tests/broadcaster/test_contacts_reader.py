"""Tests for broadcaster.contacts.reader on real CSV/XLSX fixture files and edge cases (hostile files and the
generator have test modules of their own)."""

from __future__ import annotations

import importlib.util
import unicodedata
from pathlib import Path
from types import ModuleType

import openpyxl
import pytest

from broadcaster.contacts.phones import PhoneKind
from broadcaster.contacts.reader import ContactRow, ContactsFileError, ReadResult, read_contacts
from tests.broadcaster.contact_files import write_text, write_xlsx

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "contacts"


def _load_make_fixtures() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _by_row(result: ReadResult) -> dict[int, ContactRow]:
    return {row.row: row for row in result.rows}


def _problems(result: ReadResult) -> list[tuple[int, str, str]]:
    return [(p.row, p.column, p.severity) for p in result.problems]


# ------------------------------------------------------------------------------------------------ fixtures


def test_committed_fixtures_match_their_script(tmp_path: Path) -> None:
    make_fixtures = _load_make_fixtures()
    for fresh in make_fixtures.write_fixtures(tmp_path):
        committed = FIXTURES / fresh.name
        if fresh.suffix == ".csv":
            assert committed.read_bytes() == fresh.read_bytes(), f"re-run make_fixtures.py: {fresh.name}"
        else:  # XLSX zips carry timestamps; compare the cells
            values = []
            for path in (committed, fresh):
                workbook = openpyxl.load_workbook(path, read_only=True)
                values.append(list(workbook.worksheets[0].iter_rows(values_only=True)))
                workbook.close()
            assert values[0] == values[1], f"re-run make_fixtures.py: {fresh.name}"


# ------------------------------------------------------------------------------------------------ danh-ba.csv


@pytest.fixture(scope="module")
def danh_ba() -> ReadResult:
    return read_contacts(FIXTURES / "danh-ba.csv")


def test_csv_with_bom_rows_kept_and_counted(danh_ba: ReadResult) -> None:
    assert (FIXTURES / "danh-ba.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert [row.row for row in danh_ba.rows] == [2, 3, 4, 5, 6, 7, 8, 10, 11, 16, 17]
    assert danh_ba.total_rows == 15  # 16 data lines, one completely empty
    assert danh_ba.skipped_rows == 4
    assert danh_ba.path == FIXTURES / "danh-ba.csv"


def test_csv_every_problem_on_the_right_row(danh_ba: ReadResult) -> None:
    assert _problems(danh_ba) == [
        (3, "phone", "warning"),  # old national number converted
        (4, "phone", "warning"),  # old +84 number converted
        (8, "phone", "warning"),  # landline
        (9, "phone", "error"),  # invalid, no e-mail → skipped
        (10, "phone", "error"),  # invalid, e-mail valid → kept
        (11, "email", "error"),  # invalid e-mail, phone valid → kept
        (12, "email", "error"),  # invalid e-mail, no phone → skipped
        (14, "full_name", "error"),
        (15, "external_id", "error"),
    ]
    assert [p.severity for p in danh_ba.errors] == ["error"] * 6


def test_csv_nfd_name_becomes_nfc(danh_ba: ReadResult) -> None:
    nfd_name = unicodedata.normalize("NFD", "Nguyễn Văn An")
    assert nfd_name.encode() in (FIXTURES / "danh-ba.csv").read_bytes()  # the file really holds NFD
    name = _by_row(danh_ba)[2].full_name
    assert name == "Nguyễn Văn An"
    assert unicodedata.is_normalized("NFC", name)


def test_csv_first_row_fields(danh_ba: ReadResult) -> None:
    row = _by_row(danh_ba)[2]
    assert row.external_id == "DN-000001"
    assert row.phone is not None
    assert row.phone.e164 == "+84912345678"
    assert row.raw_phone == "0912 345 678"
    assert row.email == "an.nguyen@gmail.com"
    assert (row.segment, row.agency, row.district, row.ward) == ("citizen", None, "Hải Châu", "Thạch Thang")
    assert row.language == "vi"
    assert row.tags == ("cchc", "ban-tin")
    assert row.attributes == {"Ghi chú": "gọi giờ hành chính"}
    assert row.warnings == ()


def test_csv_name_whitespace_collapsed_and_old_national_number(danh_ba: ReadResult) -> None:
    row = _by_row(danh_ba)[3]
    assert row.full_name == "Trần Thị Bích"
    assert row.language == "vi"  # default for an empty cell
    assert row.phone is not None
    assert (row.phone.national, row.phone.carrier, row.phone.converted_from) == (
        "0389123456",
        "Viettel",
        "01689123456",
    )
    assert [w.reason for w in row.warnings] == ["old 11-digit number converted to 0389123456"]


def test_csv_old_plus84_number(danh_ba: ReadResult) -> None:
    row = _by_row(danh_ba)[4]
    assert row.phone is not None
    assert (row.phone.national, row.phone.carrier) == ("0706123456", "MobiFone")
    assert row.warnings[0].value == "+841206123456"


@pytest.mark.parametrize(
    ("row_number", "national", "carrier"),
    [
        (5, "0905123456", "MobiFone"),  # full-width digits
        (6, "0935111222", "MobiFone"),  # 0084 …
        (7, "0983456789", "Viettel"),  # +84 (0)983.456.789
        (16, "0912345679", "Vinaphone"),  # 84912345679
        (17, "0599123456", "G-Mobile"),
    ],
)
def test_csv_phone_formats(danh_ba: ReadResult, row_number: int, national: str, carrier: str) -> None:
    row = _by_row(danh_ba)[row_number]
    assert row.phone is not None
    assert (row.phone.national, row.phone.carrier, row.phone.kind) == (national, carrier, PhoneKind.MOBILE)
    assert row.warnings == ()


def test_csv_landline_kept_with_warning(danh_ba: ReadResult) -> None:
    row = _by_row(danh_ba)[8]
    assert row.phone is not None
    assert (row.phone.national, row.phone.kind, row.phone.carrier) == ("02363822123", PhoneKind.FIXED, None)
    assert row.email == "vp.skhcn@danang.gov.vn"
    assert [(w.reason, w.severity) for w in row.warnings] == [("landline: cannot receive SMS", "warning")]


def test_csv_invalid_phone_kept_when_email_valid(danh_ba: ReadResult) -> None:
    row = _by_row(danh_ba)[10]
    assert row.phone is None
    assert row.raw_phone == "0123"
    assert row.email == "mai.dang@danang.gov.vn"
    assert [(w.column, w.value, w.severity) for w in row.warnings] == [("phone", "0123", "error")]


def test_csv_invalid_email_kept_when_phone_valid(danh_ba: ReadResult) -> None:
    row = _by_row(danh_ba)[11]
    assert row.email is None
    assert row.phone is not None
    assert row.warnings[0].column == "email"
    assert "@-sign" in row.warnings[0].reason


def test_csv_skipped_rows_reasons(danh_ba: ReadResult) -> None:
    by_row = {p.row: p for p in danh_ba.problems if p.severity == "error"}
    assert by_row[9].reason == "not a valid Vietnamese number"
    assert by_row[9].value == "0101234567"
    assert by_row[12].value == "tam@"
    assert by_row[14].reason == "name is empty"
    assert by_row[15].reason == "duplicate external_id (first used on row 4)"
    # the first DN-000003 is the one kept
    assert [r.full_name for r in danh_ba.rows if r.external_id == "DN-000003"] == ["Lê Minh Hoàng"]


def test_csv_language_tags_and_missing_id(danh_ba: ReadResult) -> None:
    rows = _by_row(danh_ba)
    assert rows[16].language == "en"
    assert rows[16].tags == ("y-te", "thue")
    assert rows[17].external_id is None


# ------------------------------------------------------------------------------------------------ other files


def test_semicolon_csv_without_bom_and_vietnamese_headers() -> None:
    path = FIXTURES / "danh-ba-no-bom.csv"
    assert not path.read_bytes().startswith(b"\xef\xbb\xbf")
    result = read_contacts(path)
    rows = _by_row(result)
    assert sorted(rows) == [2, 3, 4]
    first = rows[2]
    assert (first.external_id, first.full_name, first.email) == (
        "DN-100001",
        "Nguyễn Thị Hoa",
        "hoant@danang.gov.vn",
    )
    assert first.agency == "Sở Văn hóa, Thể thao và Du lịch"  # commas inside a ";" file
    assert (first.segment, first.district, first.ward) == ("civil_servant", "Hải Châu", "Phước Ninh")
    assert first.tags == ("cchc", "ban-tin")
    assert first.attributes == {}
    assert rows[3].attributes == {"Ghi chú": "Khách mời"}
    assert rows[3].phone is not None
    assert rows[3].phone.national == "0323456789"
    assert rows[4].phone is not None
    assert rows[4].phone.kind is PhoneKind.FIXED
    assert _problems(result) == [(3, "phone", "warning"), (4, "phone", "warning")]


def test_xlsx_numeric_cells_and_aliases() -> None:
    result = read_contacts(FIXTURES / "danh-ba.xlsx")
    rows = _by_row(result)
    assert sorted(rows) == [2, 3, 4, 6, 7]  # row 5 is empty, row 8 has an invalid number
    assert result.total_rows == 6
    assert rows[2].external_id == "1001"  # numeric id cell, no ".0"
    assert rows[2].full_name == "Nguyễn Văn Bình"
    assert unicodedata.is_normalized("NFC", rows[2].full_name)
    assert rows[2].raw_phone == "912345678"
    assert rows[2].phone is not None
    assert rows[2].phone.national == "0912345678"
    assert rows[3].phone is not None
    assert rows[3].phone.national == "0912345670"
    assert rows[3].agency == "Sở Y tế"
    assert rows[3].tags == ("cchc",)
    assert rows[3].attributes == {"Chức vụ": "Chuyên viên"}
    assert rows[4].phone is not None
    assert rows[4].phone.national == "0983456780"
    assert rows[6].phone is not None
    assert rows[6].phone.converted_from == "01689123457"
    assert rows[7].phone is not None
    assert rows[7].phone.kind is PhoneKind.FIXED
    assert (rows[7].district, rows[7].ward) == ("Liên Chiểu", "Hòa Minh")
    assert _problems(result) == [(6, "phone", "warning"), (7, "phone", "warning"), (8, "phone", "error")]


def test_not_utf8_names_byte_and_line() -> None:
    with pytest.raises(ContactsFileError) as info:
        read_contacts(FIXTURES / "not-utf8.csv")
    message = str(info.value)
    assert "not-utf8.csv" in message
    assert "not UTF-8" in message
    assert "line 3" in message
    assert "offset 64" in message
    assert "0xEA" in message
    assert "CSV UTF-8" in message  # says what to do


def test_missing_name_column() -> None:
    with pytest.raises(ContactsFileError) as info:
        read_contacts(FIXTURES / "missing-name-column.csv")
    assert "missing-name-column.csv" in str(info.value)
    assert "name column" in str(info.value)
    assert info.value.fix.startswith("Add")


# ------------------------------------------------------------------------------------------------ edge cases


@pytest.mark.parametrize(
    ("name", "data", "needle"),
    [
        ("empty.csv", b"", "is empty"),
        ("bom-only.csv", b"\xef\xbb\xbf\r\n\r\n", "is empty"),
        ("no-contact-columns.csv", b"full_name,segment\nAn,citizen\n", "phone or an e-mail column"),
        ("dup.csv", "full_name,phone,SĐT\nAn,0912345678,0905111222\n".encode(), '"phone" and "SĐT"'),
        ("dup-extra.csv", b"full_name,phone,Note,note\nAn,0912345678,a,b\n", "duplicates"),
        ("old.xls", b"\xd0\xcf\x11\xe0", "old Excel format"),
        ("list.txt", b"full_name,phone\n", "unsupported file type"),
        ("broken.xlsx", b"this is not a zip file", "not a readable XLSX workbook"),
    ],
)
def test_fatal_file_errors(tmp_path: Path, name: str, data: bytes, needle: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ContactsFileError) as info:
        read_contacts(path)
    assert needle in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ContactsFileError, match="cannot be read"):
        read_contacts(tmp_path / "nowhere.csv")


@pytest.mark.parametrize("text", ["Họ và tên,Điện thoại\n", "\nHọ và tên,Điện thoại\n\n,\n , \n"])
def test_a_file_with_a_header_but_no_contacts_is_refused(tmp_path: Path, text: str) -> None:
    path = write_text(tmp_path, "h.csv", text)
    with pytest.raises(ContactsFileError, match="has a header row but no contacts") as info:
        read_contacts(path)
    assert str(path) in str(info.value)


def test_an_xlsx_with_a_header_but_no_contacts_is_refused(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, [["full_name", "phone"]])
    with pytest.raises(ContactsFileError, match="has a header row but no contacts"):
        read_contacts(path)


def test_email_only_file_and_undiacritised_headers(tmp_path: Path) -> None:
    text = "Ho va ten;Thu dien tu;Doi tuong\nAn;An@DaNang.gov.vn;citizen\n"
    result = read_contacts(write_text(tmp_path, "e.csv", text))
    assert [(r.full_name, r.email, r.phone, r.segment) for r in result.rows] == [
        ("An", "An@danang.gov.vn", None, "citizen")
    ]


def test_row_without_phone_or_email_is_skipped(tmp_path: Path) -> None:
    result = read_contacts(write_text(tmp_path, "n.csv", "full_name,phone,email\nAn,,\nBình,0912345678,\n"))
    assert [r.full_name for r in result.rows] == ["Bình"]
    assert [(p.row, p.reason) for p in result.problems] == [
        (2, "neither a phone number nor an e-mail address")
    ]


def test_extra_cells_beyond_header_warn(tmp_path: Path) -> None:
    result = read_contacts(write_text(tmp_path, "x.csv", "full_name,phone\nAn,0912345678,lost\n"))
    assert len(result.rows) == 1
    assert [(p.row, p.value, p.severity) for p in result.problems] == [(2, "lost", "warning")]


def test_quoted_multiline_cell_keeps_spreadsheet_row_numbers(tmp_path: Path) -> None:
    text = 'full_name,phone,Ghi chú\nAn,0912345678,"dòng 1\ndòng 2"\nBình,0101234567,\n'
    result = read_contacts(write_text(tmp_path, "m.csv", text))
    assert result.rows[0].attributes == {"Ghi chú": "dòng 1\ndòng 2"}
    assert [p.row for p in result.problems] == [3]


def test_leading_empty_lines_and_foreign_number(tmp_path: Path) -> None:
    result = read_contacts(write_text(tmp_path, "f.csv", "\n\nfull_name,phone\nJohn Tan,+65 9123 4567\n"))
    assert result.rows[0].row == 4
    assert result.rows[0].phone is not None
    assert result.rows[0].phone.e164 == "+6591234567"
    assert [p.reason for p in result.problems] == ["number outside Vietnam (+6591234567)"]
