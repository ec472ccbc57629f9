"""The summary figures of a report, in the order and with the Vietnamese names that the DOCX's summary table
and the XLSX's "Tổng hợp" sheet share, so the two documents say the same thing the same way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from broadcaster.reporting.labels import reason_label
from broadcaster.reporting.model import DeliveryFigures

__all__ = ["FigureRow", "Kind", "figure_rows"]

Value = int | float | Decimal | None
Kind = str  # "count", "rate", "seconds", "money": how a writer formats the value


@dataclass(frozen=True)
class FigureRow:
    label: str
    value: Value
    kind: Kind


_ROWS: tuple[tuple[str, Callable[[DeliveryFigures], Value], Kind], ...] = (
    ("Số tin nhắn dự kiến gửi", lambda f: f.planned, "count"),
    ("Số tin nhắn đã gửi", lambda f: f.sent, "count"),
    ("Số tin nhắn chuyển thành công", lambda f: f.delivered, "count"),
    ("Số tin nhắn thất bại", lambda f: f.failed, "count"),
    ("Số tin nhắn không gửi (bị chặn)", lambda f: f.suppressed, "count"),
    ("Số người nhận", lambda f: f.people, "count"),
    ("Số lượt từ chối nhận tin", lambda f: f.opt_outs, "count"),
    ("Tỷ lệ chuyển thành công", lambda f: f.delivery_rate, "rate"),
    ("Thời gian chuyển tin trung vị (giây)", lambda f: f.median_seconds_to_delivery, "seconds"),
    ("Thời gian chuyển tin p95 (giây)", lambda f: f.p95_seconds_to_delivery, "seconds"),
    ("Số phần tin SMS", lambda f: f.sms_parts, "count"),
    ("Chi phí ước tính (VND)", lambda f: f.cost_vnd, "money"),
)


def figure_rows(figures: DeliveryFigures) -> tuple[FigureRow, ...]:
    """Every summary figure, then one row per suppression reason (sorted, so the order is stable)."""
    rows = [FigureRow(label, get(figures), kind) for label, get, kind in _ROWS]
    rows += [
        FigureRow(f"Không gửi - lý do: {reason_label(reason)}", count, "count")
        for reason, count in sorted(figures.suppressed_by_reason.items())
    ]
    return tuple(rows)
