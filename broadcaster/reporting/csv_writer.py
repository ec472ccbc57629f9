"""A report as one CSV file: one row per figure line, a ``section`` column saying which table it belongs to
(docs/plan.md, "Reports"). UTF-8 with a byte-order mark so that Excel shows Vietnamese correctly.

The file holds no generation time and no issue date, so a closed period regenerated later, from its frozen
rollups, gives the same bytes.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import BinaryIO

from broadcaster.reporting.model import Breakdown, DeliveryFigures, Report

__all__ = ["COLUMNS", "render_csv", "write"]

COLUMNS = (
    "section", "key", "label",
    "campaigns", "runs", "activities",
    "planned", "sent", "delivered", "failed", "suppressed", "delivery_rate", "people", "opt_outs",
    "median_seconds", "p95_seconds", "sms_parts", "cost_vnd",
    "plan_item", "agency", "kind", "frequency", "required", "done", "done_days", "missed", "evidence",
)  # fmt: skip


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.4f}"


def _figures(figures: DeliveryFigures) -> dict[str, str]:
    rate = figures.delivery_rate
    return {
        "planned": str(figures.planned),
        "sent": str(figures.sent),
        "delivered": str(figures.delivered),
        "failed": str(figures.failed),
        "suppressed": str(figures.suppressed),
        "delivery_rate": "" if rate is None else f"{rate:.4f}",
        "people": str(figures.people),
        "opt_outs": str(figures.opt_outs),
        "median_seconds": _number(figures.median_seconds_to_delivery),
        "p95_seconds": _number(figures.p95_seconds_to_delivery),
        "sms_parts": str(figures.sms_parts),
        "cost_vnd": str(Decimal(figures.cost_vnd).quantize(Decimal("0.01"))),
    }


def _breakdown(section: str, line: Breakdown) -> dict[str, str]:
    return {
        "section": section,
        "key": line.key,
        "label": line.label,
        "campaigns": str(line.campaigns),
        "runs": str(line.runs),
        "activities": str(line.activities),
    } | _figures(line.figures)


def _rows(report: Report) -> list[dict[str, str]]:
    header = report.header
    rows: list[dict[str, str]] = [
        {"section": "header", "key": key, "label": value}
        for key, value in (
            ("superior_name", header.superior_name),
            ("agency_name", header.agency_name),
            ("agency_code", header.agency_code),
            ("document_number", header.document_number),
            ("place", header.place),
            ("title", header.title),
            ("period", report.period.label),
            ("period_start", report.period.start.isoformat()),
            ("period_end", report.period.end.isoformat()),
        )
    ]
    rows.append({"section": "totals", "key": "all", "label": "Tổng cộng"} | _figures(report.totals))
    rows += [
        {"section": "suppressed_reason", "key": reason, "label": reason, "suppressed": str(count)}
        for reason, count in report.totals.suppressed_by_reason.items()
    ]
    for section, lines in (
        ("plan_item", report.by_plan_item),
        ("agency", report.by_agency),
        ("channel", report.by_channel),
        ("purpose", report.by_purpose),
    ):
        rows += [_breakdown(section, line) for line in lines]
    rows += [
        {"section": "monthly", "key": line.month, "label": line.channel, "sent": str(line.sent),
         "delivered": str(line.delivered), "failed": str(line.failed)}
        for line in report.monthly
    ]  # fmt: skip
    rows += [
        {"section": "compliance", "key": line.plan_item, "label": line.title, "agency": line.lead_agency,
         "frequency": line.frequency_text, "required": str(line.required), "done": str(line.done),
         "done_days": " ".join(day.isoformat() for day in line.done_days),
         "missed": " ".join(day.isoformat() for day in line.missed)}
        for line in report.compliance
    ]  # fmt: skip
    rows += [
        {"section": "activity", "key": line.day.isoformat(), "label": line.title, "plan_item": line.plan_item,
         "agency": line.agency, "kind": line.kind, "evidence": line.evidence or ""}
        for line in report.activities
    ]  # fmt: skip
    return rows


def render_csv(report: Report) -> bytes:
    """The report's CSV bytes (UTF-8 with BOM, CRLF line ends as RFC 4180 and Excel expect)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, restval="")
    writer.writeheader()
    writer.writerows(_rows(report))
    return text.getvalue().encode("utf-8-sig")


def write(report: Report, out: BinaryIO) -> None:
    """Write the CSV to ``out`` (the command writes a temporary file and renames it when done)."""
    out.write(render_csv(report))
