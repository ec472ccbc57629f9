"""The report as a DOCX laid out per Decree 30/2020 (``decree30``): the header block, the summary figures,
one table per breakdown, the activities, the plan compliance with the missed dates, the three charts, and
"Nơi nhận:".

The same report gives the same bytes: the core properties carry the report's own time, the pictures and
their ids are numbered in order, and the ZIP members are dated with the report's time (``zip_timestamps``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import BinaryIO

import docx
from docx.document import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Cm, Pt

from broadcaster.reporting import charts, decree30
from broadcaster.reporting import vietnamese_numbers as vn
from broadcaster.reporting.figure_rows import FigureRow, figure_rows
from broadcaster.reporting.labels import kind_label
from broadcaster.reporting.model import Breakdown, Report
from broadcaster.reporting.zip_timestamps import with_fixed_timestamps

__all__ = ["SIGNER", "write"]

TABLE_PT = 11  # the wide tables; the running text stays at 13 pt
SIGNER = "THỦ TRƯỞNG CƠ QUAN"  # the signer's title; the agency's clerk writes the name and signs
PICTURE_WIDTH = Cm(16)

_BREAKDOWN_HEADINGS = (
    "Nội dung",
    "Chiến dịch",
    "Lượt gửi",
    "Hoạt động",
    "Dự kiến",
    "Đã gửi",
    "Thành công",
    "Thất bại",
    "Bị chặn",
    "Tỷ lệ",
)


def _heading(document: Document, text: str) -> None:
    para = decree30.paragraph(document, text, bold=True, centre=False)
    para.paragraph_format.space_before = Pt(12)
    para.paragraph_format.space_after = Pt(6)


def _text(document: Document, text: str) -> None:
    """Body text: justified, first line indented 1 cm (the decree's body style)."""
    para = decree30.paragraph(document, text, centre=False)
    para.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
    para.paragraph_format.first_line_indent = Cm(1)
    para.paragraph_format.space_after = Pt(6)


def _table(
    document: Document, headings: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float]
) -> None:
    """A bordered table, its header row bold and centred, the figures right-aligned; ``widths`` in cm (they
    add up to the 16.5 cm between the margins)."""
    table = document.add_table(rows=1, cols=len(headings))
    table.style = document.styles["Table Grid"]
    table.autofit = False
    for cell, heading in zip(table.rows[0].cells, headings, strict=True):
        cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
        run = cell.paragraphs[0].add_run(heading)
        run.bold, run.font.size = True, Pt(TABLE_PT)
    for values in rows:
        cells = table.add_row().cells
        for cell, value in zip(cells, values, strict=True):
            para = cell.paragraphs[0]
            if _is_figure(value):
                para.alignment = WD_ALIGN_PARAGRAPH.RIGHT
            para.add_run(value).font.size = Pt(TABLE_PT)
    for column, width in zip(table.columns, widths, strict=True):
        column.width = Cm(width)  # the grid, which LibreOffice reads; Word reads the cells'
        for cell in column.cells:
            cell.width = Cm(width)
    document.add_paragraph()


def _is_figure(text: str) -> bool:
    """A number as ``vietnamese_numbers`` writes it (``1.150``, ``94,0%``) or its "no value" dash."""
    return text == vn.NONE or text.replace(".", "").replace(",", "").rstrip("%").isdigit()


def _figure_text(row: FigureRow) -> str:
    value = row.value
    if value is None:
        return vn.NONE
    if row.kind == "rate":
        return vn.percent(float(value))
    if row.kind == "seconds":
        return vn.decimal(float(value))
    if row.kind == "money":
        return vn.money(Decimal(value))
    return vn.integer(int(value))


def _summary(document: Document, report: Report) -> None:
    _heading(document, "I. TỔNG HỢP KẾT QUẢ")
    totals = report.totals
    _text(
        document,
        f"Trong kỳ báo cáo, đã gửi {vn.integer(totals.sent)} tin nhắn đến {vn.integer(totals.people)} người nhận, "
        f"trong đó {vn.integer(totals.delivered)} tin chuyển thành công "
        f"(tỷ lệ {vn.percent(totals.delivery_rate)}); {vn.integer(len(report.activities))} hoạt động "
        "truyền thông được ghi nhận.",
    )
    rows = [(row.label, _figure_text(row)) for row in figure_rows(totals)]
    _table(document, ("Chỉ tiêu", "Số liệu"), rows, (11.5, 5))


def _breakdown(document: Document, heading: str, rows: Sequence[Breakdown], *, with_key: bool) -> None:
    _heading(document, heading)
    _table(
        document,
        _BREAKDOWN_HEADINGS,
        [
            (
                f"{row.key}. {row.label}" if with_key else row.label,
                vn.integer(row.campaigns),
                vn.integer(row.runs),
                vn.integer(row.activities),
                vn.integer(row.figures.planned),
                vn.integer(row.figures.sent),
                vn.integer(row.figures.delivered),
                vn.integer(row.figures.failed),
                vn.integer(row.figures.suppressed),
                vn.percent(row.figures.delivery_rate),
            )
            for row in rows
        ],
        (3.4, *[1.45] * 8, 1.5),
    )


def _activities(document: Document, report: Report) -> None:
    _heading(document, "VI. CÁC HOẠT ĐỘNG ĐÃ THỰC HIỆN")
    _table(
        document,
        ("Ngày", "Mục", "Cơ quan", "Hình thức", "Nội dung", "Minh chứng"),
        [
            (
                vn.day(line.day),
                line.plan_item,
                line.agency,
                kind_label(line.kind),
                line.title,
                line.evidence or "",
            )
            for line in report.activities
        ],
        (2.3, 1.3, 3.2, 2.6, 4.2, 2.9),
    )


def _compliance(document: Document, report: Report) -> None:
    _heading(document, "VII. MỨC ĐỘ THỰC HIỆN KẾ HOẠCH")
    _table(
        document,
        (
            "Mục",
            "Nội dung",
            "Cơ quan chủ trì",
            "Tần suất",
            "Yêu cầu",
            "Đã thực hiện",
            "Đạt",
            "Các kỳ chưa thực hiện",
        ),
        [
            (
                line.plan_item,
                line.title,
                line.lead_agency,
                line.frequency_text,
                vn.integer(line.required),
                vn.integer(line.done),
                "Đạt" if line.met else "Chưa đạt",
                "; ".join(vn.day(day) for day in line.missed),
            )
            for line in report.compliance
        ],
        (1.1, 3.2, 2.4, 2.2, 1.3, 1.5, 1.4, 3.4),
    )


def _charts(document: Document, report: Report) -> None:
    _heading(document, "VIII. BIỂU ĐỒ")
    for number, chart in enumerate(charts.CHARTS, start=1):
        document.add_picture(io.BytesIO(charts.render(report, chart)), width=PICTURE_WIDTH)
        document.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
        decree30.paragraph(document, f"Biểu đồ {number}. {chart.title}", size=12, italic=True)


def _properties(document: Document, report: Report) -> None:
    """The core properties from the report alone (python-docx's template would stamp its own)."""
    properties = document.core_properties
    properties.author = properties.last_modified_by = report.header.agency_name
    properties.title = f"Báo cáo: {report.header.title}"
    properties.subject = report.period.label
    properties.created = properties.modified = properties.last_printed = _naive_utc(report.generated_at)
    properties.revision = 1
    properties.comments = properties.keywords = properties.category = ""


def _naive_utc(when: datetime) -> datetime:
    """python-docx writes a naive time as UTC ("Z")."""
    return when if when.tzinfo is None else when.astimezone(UTC).replace(tzinfo=None)


def write(report: Report, out: BinaryIO) -> None:
    document = docx.Document()
    decree30.set_up_page(document)
    decree30.header_block(document, report.header)
    period = f"Kỳ báo cáo: {report.period.label} ({report.period.describe()})"
    decree30.title_block(document, report.header.title, period)
    _summary(document, report)
    _breakdown(document, "II. THEO MỤC KẾ HOẠCH", report.by_plan_item, with_key=True)
    _breakdown(document, "III. THEO CƠ QUAN", report.by_agency, with_key=False)
    _breakdown(document, "IV. THEO KÊNH", report.by_channel, with_key=False)
    _breakdown(document, "V. THEO MỤC ĐÍCH", report.by_purpose, with_key=False)
    _activities(document, report)
    _compliance(document, report)
    _charts(document, report)
    decree30.recipients_block(document, [report.header.superior_name], SIGNER)
    _properties(document, report)
    buffer = io.BytesIO()
    document.save(buffer)
    out.write(with_fixed_timestamps(buffer.getvalue(), report.generated_at))
