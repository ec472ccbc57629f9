"""The report's documents from a hand-built ``Report`` (``report_fixture``): the DOCX laid out per Decree
30/2020 (docs/domain.md §1.3), the XLSX with one sheet per breakdown, the PNG charts; all three the same bytes
for the same report."""

from __future__ import annotations

import dataclasses
import io
import re
import zipfile
from datetime import date, datetime

import docx
import openpyxl
import pytest
from docx.document import Document
from docx.shared import Length, Pt
from docx.table import Table
from docx.text.paragraph import Paragraph

from broadcaster.reporting import charts, decree30, docx_writer, xlsx_writer
from broadcaster.reporting.model import Report
from tests.broadcaster.report_fixture import sample_report

PNG = b"\x89PNG\r\n\x1a\n"


def docx_bytes(report: Report) -> bytes:
    out = io.BytesIO()
    docx_writer.write(report, out)
    return out.getvalue()


def xlsx_bytes(report: Report) -> bytes:
    out = io.BytesIO()
    xlsx_writer.write(report, out)
    return out.getvalue()


@pytest.fixture(scope="module")
def document() -> Document:
    return docx.Document(io.BytesIO(docx_bytes(sample_report())))


def only_run(paragraph: Paragraph) -> dict[str, object]:
    """The one run's text and look, as the decree's table states them."""
    (run,) = paragraph.runs
    return {
        "text": run.text,
        "font": run.font.name,
        "size": run.font.size.pt if run.font.size else None,
        "bold": bool(run.bold),
        "italic": bool(run.italic),
        "underline": bool(run.underline),
    }


def look(
    text: str, size: float, *, bold: bool = False, italic: bool = False, underline: bool = False
) -> dict[str, object]:
    return {
        "text": text,
        "font": "Times New Roman",
        "size": size,
        "bold": bold,
        "italic": italic,
        "underline": underline,
    }


def table_with(document: Document, heading: str) -> Table:
    return next(t for t in document.tables if t.rows[0].cells[0].text == heading)


def rows(table: Table) -> list[list[str]]:
    return [[cell.text for cell in row.cells] for row in table.rows]


def test_docx_page_is_a4_with_the_decree_margins_and_times_new_roman(document: Document) -> None:
    section = document.sections[0]

    # Word stores twips: a millimetre is 56.7 of them, so compare rounded millimetres.
    def mm(length: Length | None) -> int:
        assert length is not None
        return round(float(length.mm))

    assert (mm(section.page_width), mm(section.page_height)) == (210, 297)
    assert 20 <= mm(section.top_margin) <= 25
    assert 20 <= mm(section.bottom_margin) <= 25
    assert 30 <= mm(section.left_margin) <= 35
    assert 15 <= mm(section.right_margin) <= 20
    normal = document.styles["Normal"]
    assert normal.font.name == "Times New Roman"
    assert normal.font.size == Pt(13)


def test_docx_numbers_pages_in_the_top_margin_except_the_first(document: Document) -> None:
    section = document.sections[0]
    assert section.different_first_page_header_footer
    assert section.first_page_header.paragraphs[0].text == ""
    (field,) = section.header.paragraphs[0]._p.findall(docx.oxml.ns.qn("w:fldSimple"))
    assert field.get(docx.oxml.ns.qn("w:instr")) == "PAGE"


def test_docx_header_block_follows_decree_30_field_by_field(document: Document) -> None:
    header = document.tables[0]
    (agency, nation), (number, place) = ((row.cells[0], row.cells[1]) for row in header.rows)
    superior, agency_name, rule = agency.paragraphs
    assert only_run(superior) == look("UBND THÀNH PHỐ ĐÀ NẴNG", 13)
    assert only_run(agency_name) == look("SỞ KHOA HỌC VÀ CÔNG NGHỆ", 13, bold=True)
    assert rule.text == ""
    assert rule._p.pPr.find(docx.oxml.ns.qn("w:pBdr")) is not None
    title, motto = nation.paragraphs
    assert only_run(title) == look("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 12, bold=True)
    assert only_run(motto) == look("Độc lập - Tự do - Hạnh phúc", 13, bold=True, underline=True)
    assert only_run(number.paragraphs[0]) == look("Số: 05/BC-SKHCN", 13)
    assert only_run(place.paragraphs[0]) == look("Đà Nẵng, ngày 03 tháng 02 năm 2026", 13, italic=True)
    # Borderless: every edge of the frame is "nil".
    borders = header._tbl.tblPr.find(docx.oxml.ns.qn("w:tblBorders"))
    assert [edge.get(docx.oxml.ns.qn("w:val")) for edge in borders] == ["nil"] * 6


def test_docx_title_subject_and_period_follow_the_header(document: Document) -> None:
    texts = [p.text for p in document.paragraphs if p.text]
    assert texts[:3] == [
        "BÁO CÁO",
        "Kết quả công tác truyền thông cải cách hành chính 6 tháng đầu năm 2026",
        "Kỳ báo cáo: 2026-H1 (từ ngày 16/11/2025 đến ngày 15/05/2026)",
    ]
    bao_cao = next(p for p in document.paragraphs if p.text == "BÁO CÁO")
    assert only_run(bao_cao) == look("BÁO CÁO", 14, bold=True)


@pytest.mark.parametrize(
    ("number", "code", "expected"),
    [
        ("5", "skhcn", "Số: 05/BC-SKHCN"),
        ("123", "STC", "Số: 123/BC-STC"),
        ("", "SKHCN", "Số:       /BC-SKHCN"),
    ],
)
def test_number_line_pads_small_numbers_and_leaves_room_when_blank(
    number: str, code: str, expected: str
) -> None:
    assert decree30.number_line(number, code) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 1, 5), "Đà Nẵng, ngày 05 tháng 01 năm 2026"),
        (date(2026, 2, 28), "Đà Nẵng, ngày 28 tháng 02 năm 2026"),
        (date(2026, 3, 9), "Đà Nẵng, ngày 09 tháng 3 năm 2026"),  # months from 3 on are not padded
        (date(2026, 11, 30), "Đà Nẵng, ngày 30 tháng 11 năm 2026"),
    ],
)
def test_date_line_pads_days_under_10_and_months_1_and_2(day: date, expected: str) -> None:
    assert decree30.date_line("Đà Nẵng", day) == expected


def test_docx_tables_hold_the_report_numbers(document: Document) -> None:
    summary = {label: value for label, value in rows(table_with(document, "Chỉ tiêu"))[1:]}
    assert summary["Số tin nhắn đã gửi"] == "1.540"
    assert summary["Tỷ lệ chuyển thành công"] == "93,0%"
    assert summary["Chi phí ước tính (VND)"] == "1.840.000"
    assert summary["Không gửi - lý do: opted_out"] == "30"
    by_item, by_agency, by_channel, by_purpose = (
        t for t in document.tables if t.rows[0].cells[0].text == "Nội dung"
    )
    assert rows(by_item)[1] == [
        "III.2. Đối thoại với doanh nghiệp", "2", "3", "1", "1.200", "1.150", "1.081", "69", "50", "94,0%"
    ]  # fmt: skip
    assert rows(by_item)[3][-1] == "-"  # nothing sent: no rate
    assert [row[0] for row in rows(by_agency)[1:]] == ["Sở Khoa học và Công nghệ", "Sở Tài chính"]
    assert rows(by_channel)[2][5:7] == ["390", "351"]
    assert rows(by_purpose)[1][5] == "1.540"
    activities = rows(table_with(document, "Ngày"))
    assert activities[2] == [
        "09/01/2026",
        "III.4",
        "Đài PT-TH Đà Nẵng",
        "Chuyên mục truyền hình",
        "Chuyên mục CCHC số 1",
        "https://x.vn/1",
    ]
    compliance = rows(table_with(document, "Mục"))
    assert compliance[1][4:7] == ["1", "2", "Đạt"]
    assert compliance[2][4:] == ["13", "9", "Chưa đạt", "29/11/2025; 13/12/2025; 25/04/2026; 09/05/2026"]


def test_docx_embeds_the_three_charts_as_png(document: Document) -> None:
    assert len(document.inline_shapes) == 3
    images = [part for part in document.part.package.iter_parts() if part.partname.startswith("/word/media/")]
    assert len(images) == 3
    assert all(part.blob.startswith(PNG) for part in images)
    captions = [p.text for p in document.paragraphs if p.text.startswith("Biểu đồ ")]
    assert captions == [f"Biểu đồ {n}. {chart.title}" for n, chart in enumerate(charts.CHARTS, start=1)]


def test_docx_ends_with_the_recipients_block(document: Document) -> None:
    left = document.tables[-1].rows[0].cells[0]
    heading, *recipients = left.paragraphs
    assert only_run(heading) == look("Nơi nhận:", 12, bold=True, italic=True)
    assert [only_run(p)["text"] for p in recipients] == ["- UBND THÀNH PHỐ ĐÀ NẴNG;", "- Lưu: VT."]
    assert {only_run(p)["size"] for p in recipients} == {11}


def test_docx_is_the_same_bytes_for_the_same_report_and_carries_the_report_time() -> None:
    report = sample_report()
    first = docx_bytes(report)
    assert docx_bytes(report) == first
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert {info.date_time for info in archive.infolist()} == {(2026, 5, 20, 2, 30, 0)}
    properties = docx.Document(io.BytesIO(first)).core_properties
    assert properties.created == properties.modified == report.generated_at
    assert properties.author == "Sở Khoa học và Công nghệ"
    # A different report time gives different bytes: the time is the report's, not the clock's.
    later = dataclasses.replace(report, generated_at=datetime.fromisoformat("2026-05-21T00:00:00+00:00"))
    assert docx_bytes(later) != first


def test_xlsx_has_one_sheet_per_breakdown_with_typed_cells() -> None:
    workbook = openpyxl.load_workbook(io.BytesIO(xlsx_bytes(sample_report())))
    assert workbook.sheetnames == list(xlsx_writer.SHEETS)
    summary = workbook["Tổng hợp"]
    assert [summary["A1"].value, summary["B1"].value] == ["Chỉ tiêu", "Số liệu"]
    assert summary["A1"].font.bold
    assert summary["B3"].value == "2026-H1"
    assert summary["B4"].value.date() == date(2025, 11, 16)
    assert summary["B4"].number_format == "DD/MM/YYYY"
    values = {row[0].value: row[1] for row in summary.iter_rows(min_row=2)}
    assert values["Số tin nhắn đã gửi"].value == 1540
    assert values["Tỷ lệ chuyển thành công"].number_format == "0.0%"
    assert values["Tỷ lệ chuyển thành công"].value == pytest.approx(1432 / 1540)
    items = workbook["Theo mục kế hoạch"]
    assert [c.value for c in items[1]][:3] == ["Mã", "Nội dung", "Chiến dịch"]
    assert items["C1"].font.bold
    assert [c.value for c in items[2]][:7] == ["III.2", "Đối thoại với doanh nghiệp", 2, 3, 1, 1200, 1150]
    assert items["M2"].value == pytest.approx(0.94)
    assert items["M2"].number_format == "0.0%"
    assert items["Q2"].value == 1840000
    assert items["Q2"].number_format == "#,##0"
    assert items["M4"].value is None  # nothing sent: no rate, not 0 %
    assert items.column_dimensions["B"].width == 48
    assert [row[0].value for row in workbook["Theo cơ quan"].iter_rows(min_row=2)] == ["skhcn", "stc"]
    assert workbook["Theo kênh"]["G3"].value == 390
    assert workbook["Theo mục đích"]["A2"].value == "public_service"
    activities = workbook["Hoạt động"]
    assert activities["A3"].value.date() == date(2026, 1, 9)
    assert activities["A3"].number_format == "DD/MM/YYYY"
    assert activities["F3"].value == "https://x.vn/1"
    compliance = workbook["Tuân thủ"]
    assert [c.value for c in compliance[3]][4:8] == [
        13,
        9,
        "Chưa đạt",
        "29/11/2025; 13/12/2025; 25/04/2026; 09/05/2026",
    ]


def test_xlsx_chart_data_sheet_holds_each_charts_numbers() -> None:
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx_bytes(sample_report())))["Dữ liệu biểu đồ"]
    lines = [[c for c in row if c is not None] for row in sheet.iter_rows(values_only=True)]
    assert lines[:5] == [
        ["Biểu đồ 1. Số tin nhắn đã gửi theo kênh và tháng", "Tháng", "Kênh", "Đã gửi"],
        ["2026-01", "email", 200],
        ["2026-01", "sms", 600],
        ["2026-02", "sms", 550],
        ["2026-03", "email", 190],
    ]
    assert ["III.2", 1150, 1081, pytest.approx(0.94)] in lines
    assert ["III.4", 13, 9, 4] in lines  # required, done, missed


def test_xlsx_is_the_same_bytes_for_the_same_report() -> None:
    report = sample_report()
    first = xlsx_bytes(report)
    assert xlsx_bytes(report) == first
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert {info.date_time for info in archive.infolist()} == {(2026, 5, 20, 2, 30, 0)}
        core = archive.read("docProps/core.xml").decode()
    # Created and modified are the report's time, not the clock's (openpyxl stamps "modified" as it saves).
    assert re.findall(r"<dcterms:(\w+)[^>]*>([^<]*)<", core) == [
        ("created", "2026-05-20T02:30:00Z"),
        ("modified", "2026-05-20T02:30:00Z"),
    ]


def test_charts_are_png_and_the_same_bytes_for_the_same_report() -> None:
    report = sample_report()
    for chart in charts.CHARTS:
        png = charts.render(report, chart)
        assert png.startswith(PNG)
        assert charts.render(report, chart) == png
        assert b"Software" not in png  # no version stamp
    out = io.BytesIO()
    charts.write(report, out)
    assert out.getvalue().startswith(PNG)


def test_charts_and_documents_of_an_empty_report_still_render() -> None:
    empty = dataclasses.replace(
        sample_report(), by_plan_item=(), by_agency=(), activities=(), compliance=(), monthly=()
    )
    for chart in charts.CHARTS:
        assert charts.render(empty, chart).startswith(PNG)
    assert len(docx.Document(io.BytesIO(docx_bytes(empty))).inline_shapes) == 3
    assert openpyxl.load_workbook(io.BytesIO(xlsx_bytes(empty)))["Hoạt động"].max_row == 1
