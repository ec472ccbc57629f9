"""The reports page: choose a period (a half-year with the settings' cut-offs, or two dates), generate the
report (``reporting.generate``, as ``broadcaster report``: an auditor's rebuild is rolled back), see its
figures and charts, and download it as DOCX, XLSX or CSV. Chart images are GETs and so never store the
rebuild."""

from __future__ import annotations

import io
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from broadcaster.i18n import gettext as _
from broadcaster.reporting import charts
from broadcaster.reporting.chart_data import compliance_bars, delivery_bars, monthly_bars
from broadcaster.reporting.figure_rows import figure_rows
from broadcaster.reporting.generate import generate_report
from broadcaster.reporting.model import Report
from broadcaster.reporting.periods import Period, PeriodError, half_year
from broadcaster.reporting.writers import WRITERS, writer_for
from broadcaster.web.auth import Viewer, context_of, requires
from broadcaster.web.templating import render
from broadcaster.web.ui.common import FieldError, acting_user

router = APIRouter()
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
CHARTS = {chart.name: chart for chart in charts.CHARTS}


def half_years(request: Request) -> list[Period]:
    """This year's and last year's half-years, newest first."""
    context = context_of(request)
    year = context.clock.now().year
    return [half_year(y, h, context.settings.reports) for y in (year, year - 1) for h in (2, 1)]


def chosen_period(request: Request, values: dict[str, str]) -> Period:
    """``period`` (2026-H1) or ``from``/``to`` (both days included), as ``report --period|--from --to``."""
    reports = context_of(request).settings.reports
    if values.get("period"):
        for period in half_years(request):
            if period.label == values["period"]:
                return period
        try:
            year, half = values["period"].split("-H")
            return half_year(int(year), int(half), reports)
        except ValueError:
            raise FieldError("period", _("Period: choose one of the list.")) from None
    days = []
    for field, label in (("from", _("From")), ("to", _("To"))):
        try:
            days.append(date.fromisoformat(values.get(field, "").strip()))
        except ValueError:
            raise FieldError(field, _("%(field)s: give a date as YYYY-MM-DD.") % {"field": label}) from None
    if days[0] > days[1]:
        raise FieldError("to", _("To: the period must end after it starts."))
    return Period(days[0], days[1], f"{days[0]:%Y-%m-%d} – {days[1]:%Y-%m-%d}")


def _report(request: Request, viewer: Viewer, period: Period, *, store: bool, number: str = "") -> Report:
    context = context_of(request)
    with context.readers() as session:
        user = acting_user(session, viewer)
    return generate_report(context, user, period, number=number, store=store)


def _chart_texts(report: Report) -> dict[str, list[str]]:
    """Each chart's figures as sentences: the text alternative of the image."""
    return {
        "monthly_by_channel": [f"{bar.month} · {bar.channel}: {bar.sent}" for bar in monthly_bars(report)],
        "delivery_by_plan_item": [
            f"{bar.plan_item} {bar.label}: {bar.delivered}/{bar.sent}"
            + (f" ({bar.rate:.1%})" if bar.rate is not None else "")
            for bar in delivery_bars(report)
        ],
        "compliance_by_plan_item": [
            f"{bar.plan_item}: {bar.done}/{bar.required}" for bar in compliance_bars(report)
        ],
    }


def _form(request: Request, *, status_code: int = 200, **values: Any) -> HTMLResponse:
    defaults: dict[str, Any] = {"error": None, "report": None, "values": {}, "formats": list(WRITERS)}
    return render(request, "reports/page.html", status_code=status_code, half_years=half_years(request),
                  **{**defaults, **values})  # fmt: skip


@router.get("/reports", response_class=HTMLResponse)
def reports_page(
    request: Request, viewer: Annotated[Viewer, Depends(requires("reports.read"))]
) -> HTMLResponse:
    return _form(request)


def _values(form: Any) -> dict[str, str]:
    return {key: str(form.get(key) or "") for key in ("period", "from", "to", "number", "format")}


@router.post("/reports", response_class=HTMLResponse)
async def generate(
    request: Request, viewer: Annotated[Viewer, Depends(requires("reports.read"))]
) -> Response:
    values = _values(await request.form())
    try:
        period = chosen_period(request, values)
    except (FieldError, PeriodError) as error:
        message = error.message if isinstance(error, FieldError) else str(error)
        return _form(request, status_code=422, error=message, values=values)
    report = _report(request, viewer, period, store=True, number=values["number"])
    query = {"period": values["period"]} if values["period"] else {"from": values["from"], "to": values["to"]}
    return _form(
        request,
        report=report,
        values=values,
        figures=figure_rows(report.totals),
        charts=charts.CHARTS,
        chart_texts=_chart_texts(report),
        chart_query=urlencode(query),
    )


@router.get("/reports/charts/{name}.png")
def chart(
    request: Request, viewer: Annotated[Viewer, Depends(requires("reports.read"))], name: str
) -> Response:
    if name not in CHARTS:
        return Response(status_code=404)
    try:
        period = chosen_period(request, _values(request.query_params))
    except (FieldError, PeriodError):
        return Response(status_code=400)
    report = _report(request, viewer, period, store=False)
    return Response(
        charts.render(report, CHARTS[name]), media_type="image/png", headers={"Cache-Control": "no-store"}
    )


@router.post("/reports/download")
async def download(
    request: Request,
    viewer: Annotated[Viewer, Depends(requires("reports.read"))],
    format: Annotated[str, Form()] = "csv",
) -> Response:
    values = _values(await request.form())
    if format not in WRITERS:
        return _form(request, status_code=422, error=_("Format: choose one of the list."), values=values)
    try:
        period = chosen_period(request, values)
    except (FieldError, PeriodError) as error:
        message = error.message if isinstance(error, FieldError) else str(error)
        return _form(request, status_code=422, error=message, values=values)
    report = _report(request, viewer, period, store=True, number=values["number"])
    out = io.BytesIO()
    writer_for(format)(report, out)
    name = (
        "bao-cao-" + "".join(ch if ch.isalnum() or ch == "-" else "_" for ch in period.label) + f".{format}"
    )
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    return Response(
        out.getvalue(), media_type=MEDIA_TYPES.get(format, "application/octet-stream"), headers=headers
    )
