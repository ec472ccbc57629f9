"""The API's report operation: the plan's communications report of a period as ``broadcaster report``
makes it (CSV, DOCX or XLSX), through the same service (``reporting.for_actor``).

A POST, not a GET: for editors and admins it rebuilds and stores the open days' rollups first, as the CLI.
"""

from __future__ import annotations

import io
import re
from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.reporting.generate import generate_report
from broadcaster.reporting.periods import period_from_options
from broadcaster.reporting.writers import writer_for
from broadcaster.web.api.auth import ApiCaller, api_requires
from broadcaster.web.api.errors import PROBLEMS, problem_of
from broadcaster.web.auth import context_of
from broadcaster.web.problems import Problem

router = APIRouter(prefix="/reports", tags=["reports"], responses=PROBLEMS)

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ReportRequest(BaseModel):
    """A half-year (``period``: 2026-H1) or a range of days (``from``/``to``, YYYY-MM-DD)."""

    model_config = {"populate_by_name": True}

    period: str | None = Field(default=None, max_length=20, examples=["2026-H1"])
    start: str | None = Field(default=None, alias="from", max_length=10)
    end: str | None = Field(default=None, alias="to", max_length=10)
    format: Literal["csv", "docx", "xlsx"] = "csv"
    number: str = Field(default="", max_length=100, description="The document's number (số).")


@router.post(
    "",
    response_class=Response,
    responses={200: {"content": {m: {} for m in MEDIA_TYPES.values()}, "description": "The report"}},
)
def make_report(
    request: Request, body: ReportRequest, caller: ApiCaller = Depends(api_requires("reports.read"))
) -> Response:
    """The report of the period as a file."""
    context = context_of(request)
    try:
        chosen = period_from_options(
            period=body.period, start=body.start, end=body.end, reports=context.settings.reports
        )
    except (UserError, ValueError) as exc:
        raise problem_of(UserError(str(exc)), field="period") from None
    if chosen is None:
        raise Problem(
            422,
            "period-required",
            _("Invalid request"),
            _("Give period (2026-H1 or 2026-H2), or from and to (YYYY-MM-DD)."),
            field="period",
        )
    try:
        built = generate_report(context, caller.user(), chosen, number=body.number)
        buffer = io.BytesIO()
        writer_for(body.format)(built, buffer)
    except ImportError:
        raise Problem(
            400,
            "format-unavailable",
            _("Request refused"),
            _("This installation cannot write %(format)s files.") % {"format": body.format},
            field="format",
        ) from None
    name = f"bao-cao-{re.sub(r'[^0-9A-Za-z-]+', '_', chosen.label).strip('_')}.{body.format}"
    return Response(
        buffer.getvalue(),
        media_type=MEDIA_TYPES[body.format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
