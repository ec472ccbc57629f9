"""The messages pages: the per-message log with the filters of ``broadcaster messages`` (campaign, run,
channel, status, recipient, period), newest first in keyset pages; a message's events; and the csv/jsonl
exports of ``history/export.py`` — masked for every role unless an admin asks for the full data (audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from broadcaster import masking
from broadcaster.campaigns.schema import SUPPORTED_CHANNELS
from broadcaster.errors import UserError
from broadcaster.history.export import WRITERS, ExportFormat
from broadcaster.history.filters import HistoryFilter, PeriodOn, recipient
from broadcaster.history.query import iter_history
from broadcaster.i18n import gettext as _
from broadcaster.vocabulary import MessageStatus
from broadcaster.web.auth import Viewer, context_of, requires
from broadcaster.web.templating import render
from broadcaster.web.ui.common import (
    EXPORT_TYPES,
    PAGE_SIZE,
    FieldError,
    acting_user,
    download,
    keyset,
    local_day,
    optional_int,
)

router = APIRouter()
FILTER_FIELDS = ("campaign", "run", "channel", "status", "recipient", "from", "to", "on")


def history_filter(values: dict[str, str]) -> HistoryFilter:
    """The form's fields as the ``HistoryFilter`` the CLI builds from its options."""
    status = values.get("status", "")
    if status and status not in {s.value for s in MessageStatus}:
        raise FieldError("status", _("Status: choose one of the list."))
    channel = values.get("channel", "")
    if channel and channel not in SUPPORTED_CHANNELS:
        raise FieldError("channel", _("Channel: choose one of the list."))
    on = values.get("on", "") or PeriodOn.CREATED.value
    if on not in {p.value for p in PeriodOn}:
        raise FieldError("on", _("Period on: choose one of the list."))
    person = None
    if values.get("recipient", "").strip():
        try:
            person = recipient(values["recipient"])
        except UserError:
            raise FieldError("recipient", _("Recipient: give a phone number or an e-mail address.")) from None
    start = local_day("from", _("From"), values.get("from"), end_of_day=False)
    end = local_day("to", _("To"), values.get("to"), end_of_day=True)
    if start is not None and end is not None and start >= end:
        raise FieldError("to", _("To: the period must end after it starts."))
    return HistoryFilter(
        campaign=values.get("campaign", "").strip() or None,
        run=optional_int("run", _("Run"), values.get("run")),
        recipient=person,
        statuses=(MessageStatus(status),) if status else (),
        channel=channel or None,
        period_from=start,
        period_to=end,
        period_on=PeriodOn(on),
    )


def _choices() -> dict[str, Any]:
    return {"statuses": [s.value for s in MessageStatus], "periods_on": [p.value for p in PeriodOn]}


@router.get("/messages", response_class=HTMLResponse)
def messages_page(request: Request, viewer: Annotated[Viewer, Depends(requires("read"))]) -> Response:
    context = context_of(request)
    values = {key: request.query_params.get(key, "") for key in (*FILTER_FIELDS, "before")}
    try:
        filters = history_filter(values)
        before = optional_int("before", _("Page"), values["before"])
    except FieldError as error:
        return render(request, "messages/list.html", status_code=400, error=error, rows=[], values=values,
                      pages=None, **_choices())  # fmt: skip
    with context.readers() as session:
        mask = masking.must_mask(acting_user(session, viewer), unmasked=False)
        filters = filters.keyed(context.settings.security.erasure_key())
        rows = list(
            iter_history(session, filters, mask=mask, newest_first=True, limit=PAGE_SIZE, start_after=before)
        )
    pages = keyset(
        "/messages",
        {k: v for k, v in values.items() if k != "before"},
        last_id=rows[-1].id if rows else None,
        full=len(rows) == PAGE_SIZE,
        paged=before is not None,
    )
    return render(
        request, "messages/list.html", rows=rows, values=values, pages=pages, error=None, **_choices()
    )


@router.get("/messages/{message_id}", response_class=HTMLResponse)
def message_page(
    request: Request, viewer: Annotated[Viewer, Depends(requires("read"))], message_id: int
) -> Response:
    context = context_of(request)
    with context.readers() as session:
        mask = masking.must_mask(acting_user(session, viewer), unmasked=False)
        found = list(
            iter_history(
                session, HistoryFilter(), mask=mask, newest_first=True, limit=1, start_after=message_id + 1
            )
        )
    if not found or found[0].id != message_id:
        return render(
            request, "error.html", status_code=404, title=_("Not found"), message=_("No such message.")
        )
    return render(request, "messages/detail.html", message=found[0])


@router.post("/messages/export")
async def export_messages(
    request: Request,
    viewer: Annotated[Viewer, Depends(requires("read"))],
    format: Annotated[str, Form()] = "csv",
    unmasked: Annotated[str, Form()] = "",
) -> Response:
    """A POST (a form button): an unmasked export writes its audit entry."""
    context = context_of(request)
    form = await request.form()
    values = {key: str(form.get(key) or "") for key in FILTER_FIELDS}
    if format not in EXPORT_TYPES:
        return render(
            request,
            "error.html",
            status_code=400,
            title=_("Export"),
            message=_("Format: choose csv or jsonl."),
        )
    try:
        filters = history_filter(values)
    except FieldError as error:
        return render(request, "messages/list.html", status_code=400, error=error, rows=[], values=values,
                      pages=None, **_choices())  # fmt: skip
    full = unmasked == "1"
    writer = WRITERS[ExportFormat(format)]
    with context.sessions.begin() as session:
        user = acting_user(session, viewer)
        mask = masking.must_mask_export(user, unmasked=full) if viewer.may(masking.UNMASK_ACTION) else True
        filters = filters.keyed(context.settings.security.erasure_key())
        shown = 0

        def write(stream: Any) -> int:
            nonlocal shown
            shown = writer(iter_history(session, filters, mask=mask), stream)
            return shown

        response = download(write, file_name=f"tin-nhan.{format}", media_type=EXPORT_TYPES[format])
        if not mask:
            masking.record_unmasked(
                session,
                actor=user,
                what="messages",
                filters={**filters.as_dict(), "format": format, "via": "web"},
                shown=shown,
                clock=context.clock,
            )
    return response
