"""The numbers behind the report's three charts, shared by the PNG charts (``charts``) and the XLSX sheet
"Dữ liệu biểu đồ" (``xlsx_writer``), so that a reader can redraw each chart from the workbook."""

from __future__ import annotations

from dataclasses import dataclass

from broadcaster.reporting.model import Report

__all__ = ["ComplianceBar", "DeliveryBar", "MonthlyBar", "compliance_bars", "delivery_bars", "monthly_bars"]


@dataclass(frozen=True)
class MonthlyBar:
    """Messages sent on one channel in one month (chart 1)."""

    month: str  # YYYY-MM
    channel: str
    sent: int


@dataclass(frozen=True)
class DeliveryBar:
    """Delivery rate of one plan item (chart 2); ``rate`` is None when the item sent nothing."""

    plan_item: str
    label: str
    sent: int
    delivered: int
    rate: float | None


@dataclass(frozen=True)
class ComplianceBar:
    """Required against done for one plan item (chart 3)."""

    plan_item: str
    required: int
    done: int
    missed: int


def monthly_bars(report: Report) -> tuple[MonthlyBar, ...]:
    return tuple(
        MonthlyBar(line.month, line.channel, line.sent)
        for line in sorted(report.monthly, key=lambda line: (line.month, line.channel))
    )


def delivery_bars(report: Report) -> tuple[DeliveryBar, ...]:
    return tuple(
        DeliveryBar(row.key, row.label, row.figures.sent, row.figures.delivered, row.figures.delivery_rate)
        for row in report.by_plan_item
    )


def compliance_bars(report: Report) -> tuple[ComplianceBar, ...]:
    return tuple(
        ComplianceBar(line.plan_item, line.required, line.done, len(line.missed))
        for line in report.compliance
    )
