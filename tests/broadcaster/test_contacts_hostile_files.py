"""Contacts files built to hurt: control characters, too many rows, too large, XLSX zip bombs and wide sheets."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from broadcaster.contacts.reader import ContactsFileError, read_contacts
from broadcaster.settings_sections import ContactsSettings
from tests.broadcaster.contact_files import write_text, write_xlsx


@pytest.mark.parametrize(
    ("cell", "code"),
    [("Nguyễn\x00Văn An", "U+0000"), ("\x1b[31mAn", "U+001B"), ("An\x7f", "U+007F"), ("An\x85", "U+0085")],
)
def test_control_characters_refuse_the_row_naming_row_and_column(
    tmp_path: Path, cell: str, code: str
) -> None:
    text = f"full_name,phone,district,Ghi chú\n{cell},0912345678,Hải Châu,\nBình,0912345670,Sơn\x00Trà,ok\n"
    text += 'Chi,0912345671,Thanh Khê,gọi\x07 sau\nDũng,0912345672,Cẩm Lệ,"dòng 1\r\n\tdòng 2"\n'
    result = read_contacts(write_text(tmp_path, "c.csv", text))
    assert [row.full_name for row in result.rows] == ["Dũng"]  # tab and line breaks are ordinary in a cell
    assert [(p.row, p.column, p.severity) for p in result.errors] == [
        (2, "full_name", "error"),
        (3, "district", "error"),
        (4, "Ghi chú", "error"),
    ]
    assert code in result.errors[0].reason
    assert "control character" in result.errors[0].reason
    # The report spells the character out: nothing invisible (or refused by PostgreSQL JSON) is kept.
    assert result.errors[1].value == "Sơn\\x00Trà"
    assert all(ch.isprintable() for p in result.problems for ch in p.value)


def test_control_characters_in_xlsx_cells_and_in_the_spill_warning(tmp_path: Path) -> None:
    # XML (and so XLSX) cannot hold NUL or ESC, but DEL and the C1 controls it can.
    rows: list[list[object]] = [
        ["full_name", "phone"],
        ["An\x7f", "0912345678"],
        ["Bình", "0912345670", "x\x9b"],
    ]
    result = read_contacts(write_xlsx(tmp_path, rows))
    assert [row.full_name for row in result.rows] == ["Bình"]
    assert [(p.row, p.column, p.value) for p in result.problems] == [
        (2, "full_name", "An\\x7f"),
        (3, "", "x\\x9b"),
    ]


def test_a_control_character_in_the_header_refuses_the_file(tmp_path: Path) -> None:
    path = write_text(tmp_path, "h.csv", "full_name,phone,Ghi\x00chú\nAn,0912345678,x\n")
    with pytest.raises(
        ContactsFileError, match=r'header column 3 "Ghi\\x00chú" holds a control character U\+0000'
    ):
        read_contacts(path)


def test_row_limit(tmp_path: Path) -> None:
    rows = "".join(f"Người {n},09123456{n:02d}\n" for n in range(5))
    path = write_text(tmp_path, "r.csv", "full_name,phone\n" + rows)
    assert len(read_contacts(path, limits=ContactsSettings(max_rows=5)).rows) == 5
    with pytest.raises(ContactsFileError) as info:
        read_contacts(path, limits=ContactsSettings(max_rows=4))
    assert str(path) in str(info.value)
    assert "more than 4 rows of contacts (setting contacts.max_rows)" in str(info.value)


def test_csv_size_limit(tmp_path: Path) -> None:
    path = write_text(tmp_path, "big.csv", "full_name,phone\n" + "An,0912345678\n" * 80_000)  # 1.1 MB
    with pytest.raises(ContactsFileError) as info:
        read_contacts(path, limits=ContactsSettings(max_file_mb=1, max_rows=1_000_000))
    assert str(path) in str(info.value)
    assert "is 1.1 MB, more than the 1 MB allowed (setting contacts.max_file_mb)" in str(info.value)


def test_an_xlsx_zip_bomb_is_refused_before_it_is_unpacked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small file whose sheet unpacks to more than the limit is refused from the zip's directory alone:
    the workbook is never opened."""
    path = write_xlsx(tmp_path, [["full_name", "phone"]] + [["Nguyễn Văn An", "0912345678"]] * 30_000)
    assert path.stat().st_size < 300_000
    # sources.xlsx_rows imports load_workbook from openpyxl when it runs.
    monkeypatch.setattr(openpyxl, "load_workbook", _never_called)
    with pytest.raises(ContactsFileError) as info:
        read_contacts(path, limits=ContactsSettings(max_file_mb=1))
    assert str(path) in str(info.value)
    assert "unpacks to" in str(info.value)
    assert "the 1 MB allowed (setting contacts.max_file_mb)" in str(info.value)


def _never_called(*args: object, **kwargs: object) -> None:
    raise AssertionError("the workbook was opened")


def test_xlsx_rows_are_counted_in_streaming_mode_whatever_the_sheet_claims(tmp_path: Path) -> None:
    """A sheet with one row at the bottom of the sheet (1,048,576) and a dimension claiming every column is
    refused by the row limit, not padded row by row to 16,384 columns."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["full_name", "phone"])
    sheet.cell(row=1_048_576, column=1, value="An")
    sheet.cell(row=1_048_576, column=2, value="0912345678")
    path = tmp_path / "bottom.xlsx"
    workbook.save(path)
    with pytest.raises(ContactsFileError, match="more than 1,000 rows"):
        read_contacts(path, limits=ContactsSettings(max_rows=1_000))


def test_xlsx_cells_far_to_the_right_are_refused(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["full_name", "phone"])
    sheet.append(["An", "0912345678"])
    sheet.cell(row=2, column=16_384, value="x")
    path = tmp_path / "wide.xlsx"
    workbook.save(path)
    with pytest.raises(ContactsFileError, match="row 2 has cells beyond column 256"):
        read_contacts(path)
