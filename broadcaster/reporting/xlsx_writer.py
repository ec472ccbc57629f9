"""The report as an XLSX workbook: one sheet per breakdown and one with the charts' data, numbers as numbers,
dates as dates, rates as percentages (issue #12, "Formats").

Written in openpyxl's write-only mode (rows streamed, memory flat in the activities' count). The workbook's
properties carry the report's time and the ZIP members are dated with it, so the same report gives the same
bytes.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any, BinaryIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.xml.functions import tostring

from broadcaster.reporting.chart_data import compliance_bars, delivery_bars, monthly_bars
from broadcaster.reporting.figure_rows import figure_rows
from broadcaster.reporting.labels import kind_label
from broadcaster.reporting.model import Breakdown, Report
from broadcaster.reporting.zip_timestamps import with_fixed_timestamps

__all__ = ["SHEETS", "Column", "write"]

SHEETS = (
    "Tổng hợp",
    "Theo mục kế hoạch",
    "Theo cơ quan",
    "Theo kênh",
    "Theo mục đích",
    "Hoạt động",
    "Tuân thủ",
    "Dữ liệu biểu đồ",
)

# Number formats by kind of value (``Column.kind``).
_FORMATS = {"count": "#,##0", "rate": "0.0%", "seconds": "0.0", "money": "#,##0", "date": "DD/MM/YYYY"}
_BOLD = Font(bold=True)


@dataclass(frozen=True)
class Column:
    """A column's heading, width (characters) and kind (a key of ``_FORMATS``, or "text")."""

    heading: str
    width: int
    kind: str = "text"


def _bold(sheet: Any, value: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=value)
    cell.font = _BOLD
    cell.alignment = Alignment(wrap_text=True, vertical="center")
    return cell


def _start(workbook: Workbook, title: str, columns: Sequence[Column], *, header: bool = True) -> Any:
    """A new sheet with its column widths set (before any row: write-only mode needs them first)."""
    sheet = workbook.create_sheet(title)
    for index, column in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    if header:
        sheet.freeze_panes = "A2"
        sheet.append([_bold(sheet, column.heading) for column in columns])
    return sheet


def _sheet(workbook: Workbook, title: str, columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> None:
    sheet = _start(workbook, title, columns)
    for values in rows:
        sheet.append(
            [_cell(sheet, value, column.kind) for value, column in zip(values, columns, strict=True)]
        )


def _cell(sheet: Any, value: Any, kind: str) -> Any:
    """A plain value for text; a cell with the kind's number format for numbers, rates and dates."""
    if value is None or kind == "text":
        return value
    cell = WriteOnlyCell(sheet, value=value)
    cell.number_format = _FORMATS[kind]
    return cell


_BREAKDOWN = (
    Column("Mã", 14),
    Column("Nội dung", 48),
    Column("Chiến dịch", 11, "count"),
    Column("Lượt gửi", 10, "count"),
    Column("Hoạt động", 11, "count"),
    Column("Dự kiến", 11, "count"),
    Column("Đã gửi", 11, "count"),
    Column("Thành công", 12, "count"),
    Column("Thất bại", 10, "count"),
    Column("Bị chặn", 10, "count"),
    Column("Người nhận", 12, "count"),
    Column("Từ chối nhận tin", 12, "count"),
    Column("Tỷ lệ chuyển thành công", 14, "rate"),
    Column("Trung vị (giây)", 11, "seconds"),
    Column("p95 (giây)", 11, "seconds"),
    Column("Phần tin SMS", 12, "count"),
    Column("Chi phí (VND)", 14, "money"),
)


def _breakdown_rows(rows: Sequence[Breakdown]) -> Iterable[Sequence[Any]]:
    for row in rows:
        f = row.figures
        yield (
            row.key,
            row.label,
            row.campaigns,
            row.runs,
            row.activities,
            f.planned,
            f.sent,
            f.delivered,
            f.failed,
            f.suppressed,
            f.people,
            f.opt_outs,
            f.delivery_rate,
            f.median_seconds_to_delivery,
            f.p95_seconds_to_delivery,
            f.sms_parts,
            f.cost_vnd,
        )


def _summary(workbook: Workbook, report: Report) -> None:
    """Who reports on which period, then every summary figure; the one value column holds text, dates and
    numbers, each cell formatted by its own kind."""
    header = report.header
    rows: list[tuple[str, Any, str]] = [
        ("Cơ quan", header.agency_name, "text"),
        ("Kỳ báo cáo", report.period.label, "text"),
        ("Từ ngày", report.period.start, "date"),
        ("Đến ngày", report.period.end, "date"),
        ("Ngày lập", header.issued_on, "date"),
    ]
    rows += [(row.label, row.value, row.kind) for row in figure_rows(report.totals)]
    columns = (Column("Chỉ tiêu", 44), Column("Số liệu", 24))
    sheet = _start(workbook, SHEETS[0], columns)
    for label, value, kind in rows:
        sheet.append([label, _cell(sheet, value, kind)])


def _activities(workbook: Workbook, report: Report) -> None:
    columns = (
        Column("Ngày", 12, "date"),
        Column("Mục", 8),
        Column("Cơ quan", 32),
        Column("Hình thức", 16),
        Column("Nội dung", 48),
        Column("Minh chứng", 36),
    )
    rows = (
        (a.day, a.plan_item, a.agency, kind_label(a.kind), a.title, a.evidence) for a in report.activities
    )
    _sheet(workbook, SHEETS[5], columns, rows)


def _compliance(workbook: Workbook, report: Report) -> None:
    columns = (
        Column("Mục", 8),
        Column("Nội dung", 48),
        Column("Cơ quan chủ trì", 32),
        Column("Tần suất", 24),
        Column("Yêu cầu", 10, "count"),
        Column("Đã thực hiện", 12, "count"),
        Column("Đạt", 10),
        Column("Các kỳ chưa thực hiện", 40),
        Column("Ngày thực hiện", 40),
    )
    rows = (
        (
            c.plan_item,
            c.title,
            c.lead_agency,
            c.frequency_text,
            c.required,
            c.done,
            "Đạt" if c.met else "Chưa đạt",
            "; ".join(f"{day:%d/%m/%Y}" for day in c.missed),
            "; ".join(f"{day:%d/%m/%Y}" for day in c.done_days),
        )
        for c in report.compliance
    )
    _sheet(workbook, SHEETS[6], columns, rows)


def _chart_data(workbook: Workbook, report: Report) -> None:
    """The three charts' data one under the other, each block under its own bold header row."""
    columns = (Column("Biểu đồ", 50), Column("Mục / Tháng", 14), *(Column("", 14) for _ in range(3)))
    sheet = _start(workbook, SHEETS[7], columns, header=False)

    def block(*titles: str) -> None:
        sheet.append([_bold(sheet, title) for title in titles])

    def line(*values: Any, kinds: Sequence[str]) -> None:
        sheet.append([_cell(sheet, value, kind) for value, kind in zip(values, kinds, strict=True)])

    block("Biểu đồ 1. Số tin nhắn đã gửi theo kênh và tháng", "Tháng", "Kênh", "Đã gửi")
    for bar in monthly_bars(report):
        line(None, bar.month, bar.channel, bar.sent, kinds=("text", "text", "text", "count"))
    sheet.append([])
    block("Biểu đồ 2. Tỷ lệ chuyển thành công theo mục kế hoạch", "Mục", "Đã gửi", "Thành công", "Tỷ lệ")
    for d in delivery_bars(report):
        line(None, d.plan_item, d.sent, d.delivered, d.rate, kinds=("text", "text", "count", "count", "rate"))
    sheet.append([])
    block("Biểu đồ 3. Mức độ thực hiện kế hoạch theo mục", "Mục", "Yêu cầu", "Đã thực hiện", "Số kỳ bỏ lỡ")
    for c in compliance_bars(report):
        line(
            None, c.plan_item, c.required, c.done, c.missed, kinds=("text", "text", "count", "count", "count")
        )


def write(report: Report, out: BinaryIO) -> None:
    workbook = Workbook(write_only=True)
    when = report.generated_at.astimezone(UTC).replace(tzinfo=None)
    workbook.properties.created = workbook.properties.modified = when
    workbook.properties.creator = workbook.properties.lastModifiedBy = report.header.agency_name
    workbook.properties.title = f"Báo cáo: {report.header.title}"
    _summary(workbook, report)
    for title, rows in zip(
        SHEETS[1:5],
        (report.by_plan_item, report.by_agency, report.by_channel, report.by_purpose),
        strict=True,
    ):
        _sheet(workbook, title, _BREAKDOWN, _breakdown_rows(rows))
    _activities(workbook, report)
    _compliance(workbook, report)
    _chart_data(workbook, report)
    buffer = io.BytesIO()
    workbook.save(buffer)
    # openpyxl stamps "modified" with the clock as it saves: the core properties are written again.
    workbook.properties.modified = when
    core = {"docProps/core.xml": tostring(workbook.properties.to_tree())}
    out.write(with_fixed_timestamps(buffer.getvalue(), report.generated_at, replace=core))
