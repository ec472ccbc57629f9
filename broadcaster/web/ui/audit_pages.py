"""The audit pages: the search of ``broadcaster audit search`` (actor, action or family, campaign, recipient
through its keyed hash, period) in keyset pages, its csv/jsonl exports, and "verify the chain" — the
``audit verify`` check of every entry. Entries name people by keyed hash only: nothing here needs masking."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from broadcaster.audit.export import write_csv, write_jsonl
from broadcaster.audit.search import AuditFilter, iter_entries
from broadcaster.audit.verify import CONTENT, HEAD_AHEAD, HEAD_BEHIND, LINK, MISSING, Break, verify_chain
from broadcaster.errors import UserError
from broadcaster.history.filters import recipient
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _
from broadcaster.web.auth import Viewer, context_of, requires
from broadcaster.web.templating import render
from broadcaster.web.ui.common import (
    EXPORT_TYPES,
    PAGE_SIZE,
    FieldError,
    download,
    keyset,
    local_day,
    optional_int,
)

router = APIRouter()
FILTER_FIELDS = ("actor", "action", "campaign", "recipient", "from", "to")
WRITERS = {"csv": write_csv, "jsonl": write_jsonl}
BREAK_TEXTS = {
    MISSING: N_("entries were deleted from the log"),
    LINK: N_("it does not link to the entry before it: an entry was deleted, inserted or reordered"),
    CONTENT: N_("its content does not match its hash: it was changed after it was written"),
    HEAD_AHEAD: N_("the chain head records entries the log no longer holds: the last entries were deleted"),
    HEAD_BEHIND: N_(
        "the log holds entries past the chain head, or the head's hash differs: entries were added"
    ),
}


def audit_filter(values: dict[str, str], erasure_key: str) -> AuditFilter:
    hashes: tuple[str, ...] = ()
    if values.get("recipient", "").strip():
        try:
            hashed = recipient(values["recipient"]).keyed(erasure_key).hashed
        except UserError:
            raise FieldError("recipient", _("Recipient: give a phone number or an e-mail address.")) from None
        if hashed is None:
            raise FieldError("recipient", _("Recipient: the installation has no key to find people by hash."))
        hashes = (hashed,)
    start = local_day("from", _("From"), values.get("from"), end_of_day=False)
    end = local_day("to", _("To"), values.get("to"), end_of_day=True)
    if start is not None and end is not None and start >= end:
        raise FieldError("to", _("To: the period must end after it starts."))
    return AuditFilter(
        actor=values.get("actor", "").strip() or None,
        action=values.get("action", "").strip() or None,
        campaign=values.get("campaign", "").strip() or None,
        recipient_hashes=hashes,
        period_from=start,
        period_to=end,
    )


def _values(source: Any) -> dict[str, str]:
    return {key: str(source.get(key) or "") for key in FILTER_FIELDS}


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, viewer: Annotated[Viewer, Depends(requires("read"))]) -> Response:
    context = context_of(request)
    values = _values(request.query_params)
    try:
        filters = audit_filter(values, context.settings.security.erasure_key())
        before = optional_int("before", _("Page"), request.query_params.get("before"))
    except FieldError as error:
        return render(request, "audit/search.html", status_code=400, error=error, values=values, entries=[],
                      pages=None, verdict=None)  # fmt: skip
    with context.readers() as session:
        entries = list(iter_entries(session, filters, newest_first=True, limit=PAGE_SIZE, start_after=before))
    pages = keyset(
        "/audit", values, last_id=entries[-1].id if entries else None, full=len(entries) == PAGE_SIZE,
        paged=before is not None,
    )  # fmt: skip
    shown = [{**entry.__dict__, "details": json.dumps(entry.details, ensure_ascii=False, sort_keys=True)}
             for entry in entries]  # fmt: skip
    return render(
        request, "audit/search.html", error=None, values=values, entries=shown, pages=pages, verdict=None
    )


def describe_break(broken: Break) -> str:
    text = _(BREAK_TEXTS[broken.kind]) if broken.kind in BREAK_TEXTS else broken.problem
    if broken.kind == MISSING and broken.last_missing and broken.last_missing != broken.entry_id:
        return _("Entries #%(first)s–#%(last)s: %(problem)s.") % {
            "first": broken.entry_id, "last": broken.last_missing, "problem": text,
        }  # fmt: skip
    return _("Entry #%(id)s: %(problem)s.") % {"id": broken.entry_id, "problem": text}


@router.post("/audit/verify", response_class=HTMLResponse)
def verify(request: Request, viewer: Annotated[Viewer, Depends(requires("read"))]) -> Response:
    """A POST only because it is a button that may take a while; it reads and changes nothing."""
    context = context_of(request)
    with context.readers() as session:
        verdict = verify_chain(session)
    result = {
        "ok": verdict.ok,
        "entries": verdict.entries,
        "broken": describe_break(verdict.broken) if verdict.broken else None,
        "broken_at": verdict.broken.at if verdict.broken else None,
        "broken_action": verdict.broken.action if verdict.broken else None,
    }
    return render(request, "audit/search.html", error=None, values=_values({}), entries=[], pages=None,
                  verdict=result)  # fmt: skip


@router.post("/audit/export")
async def export(
    request: Request,
    viewer: Annotated[Viewer, Depends(requires("read"))],
    format: Annotated[str, Form()] = "csv",
) -> Response:
    context = context_of(request)
    values = _values(await request.form())
    if format not in WRITERS:
        return render(
            request,
            "error.html",
            status_code=400,
            title=_("Export"),
            message=_("Format: choose csv or jsonl."),
        )
    try:
        filters = audit_filter(values, context.settings.security.erasure_key())
    except FieldError as error:
        return render(request, "audit/search.html", status_code=400, error=error, values=values, entries=[],
                      pages=None, verdict=None)  # fmt: skip
    writer = WRITERS[format]
    with context.readers() as session:
        return download(
            lambda stream: writer(iter_entries(session, filters), stream),
            file_name=f"nhat-ky-kiem-toan.{format}",
            media_type=EXPORT_TYPES[format],
        )
