"""The contacts pages: the list (search by name, phone, e-mail or segment, newest first, keyset pages), the
segments with their counts, and the upload of a contacts file with its row-level report — on the services
``broadcaster contacts`` uses, masked for the role as the CLI masks (``masking.must_mask``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import HTMLResponse
from sqlalchemy import ColumnElement, func, select

from broadcaster import masking
from broadcaster.contacts.emails import EmailError, normalize_email
from broadcaster.contacts.importer import ContactsImportError, import_contacts
from broadcaster.contacts.phones import PhoneError, parse_phone
from broadcaster.db.models import Contact
from broadcaster.i18n import gettext as _
from broadcaster.web.auth import Viewer, context_of, requires
from broadcaster.web.templating import render
from broadcaster.web.ui.common import PAGE_SIZE, FieldError, acting_user, keyset, optional_int

router = APIRouter()
ALLOWED_SUFFIXES = (".csv", ".xlsx")


def search_clause(text: str) -> ColumnElement[bool]:
    """What a search box means: an e-mail address, a phone number in any usual spelling, or part of a name."""
    text = text.strip()
    if "@" in text:
        # With the case ignored, as imports merge addresses (and on the index of lower(email)).
        try:
            return func.lower(Contact.email) == normalize_email(text).lower()
        except EmailError:
            return func.lower(Contact.email) == text.lower()
    if any(ch.isdigit() for ch in text):
        try:
            return Contact.phone == parse_phone(text).e164
        except PhoneError:
            pass
    return Contact.full_name.ilike(f"%{text}%")


def shown_contact(contact: Contact, *, mask: bool) -> dict[str, object]:
    return {
        "id": contact.id,
        "external_id": contact.external_id,
        "full_name": masking.mask_name(contact.full_name) if mask else contact.full_name,
        "phone": masking.mask_phone(contact.phone) if mask else contact.phone,
        "email": masking.mask_email(contact.email) if mask else contact.email,
        "carrier": contact.carrier,
        "segment": contact.segment,
        "agency": contact.agency,
        "district": contact.district,
        "ward": contact.ward,
        "language": contact.language,
        "created_at": contact.created_at,
    }


@router.get("/contacts", response_class=HTMLResponse)
def contacts_page(
    request: Request,
    viewer: Annotated[Viewer, Depends(requires("read"))],
    q: str = "",
    segment: str = "",
    before: str = "",
) -> HTMLResponse:
    context = context_of(request)
    try:
        last = optional_int("before", _("Page"), before)
    except FieldError as error:
        return render(request, "contacts/list.html", status_code=400, error=error, rows=[], segments=[],
                      q=q, segment=segment, pages=None, total=0)  # fmt: skip
    with context.readers() as session:
        mask = masking.must_mask(acting_user(session, viewer), unmasked=False)
        where: list[ColumnElement[bool]] = []
        if q.strip():
            where.append(search_clause(q))
        if segment.strip():
            where.append(Contact.segment == segment.strip())
        total = session.scalar(select(func.count()).select_from(Contact).where(*where)) or 0
        query = select(Contact).where(*where).order_by(Contact.id.desc()).limit(PAGE_SIZE)
        if last is not None:
            query = query.where(Contact.id < last)
        rows = [shown_contact(c, mask=mask) for c in session.scalars(query)]
        segments = session.execute(
            select(Contact.segment, func.count()).group_by(Contact.segment).order_by(Contact.segment)
        ).all()
    pages = keyset(
        "/contacts",
        {"q": q, "segment": segment},
        last_id=int(str(rows[-1]["id"])) if rows else None,
        full=len(rows) == PAGE_SIZE,
        paged=last is not None,
    )
    return render(request, "contacts/list.html", rows=rows, segments=segments, q=q, segment=segment,
                  pages=pages, total=total, error=None)  # fmt: skip


@router.get("/contacts/import", response_class=HTMLResponse)
def import_form(
    request: Request, viewer: Annotated[Viewer, Depends(requires("contacts.import"))]
) -> HTMLResponse:
    return render(request, "contacts/import.html", report=None, error=None)


@router.post("/contacts/import", response_class=HTMLResponse)
async def import_file(
    request: Request,
    viewer: Annotated[Viewer, Depends(requires("contacts.import"))],
    file: Annotated[UploadFile | None, Form()] = None,
) -> HTMLResponse:
    """The upload is written to a private temporary file (the importer reads a path) and removed after."""
    context = context_of(request)
    name = Path(file.filename or "").name if file is not None else ""
    suffix = Path(name).suffix.lower()
    if file is None or not name:
        return _import_refused(request, _("File: choose a CSV or XLSX file."))
    if suffix not in ALLOWED_SUFFIXES:
        return _import_refused(request, _("File: only .csv and .xlsx files can be imported."))
    with tempfile.TemporaryDirectory(prefix="broadcaster-import-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(await file.read())
        try:
            with context.sessions.begin() as session:
                user = acting_user(session, viewer)
                report = import_contacts(
                    session,
                    path=path,
                    actor=user.login,
                    clock=context.clock,
                    limits=context.settings.contacts,
                )
        except ContactsImportError as exc:
            return _import_refused(request, str(exc).replace(str(path), name))
    return render(request, "contacts/import.html", report=report, file_name=name, error=None)


def _import_refused(request: Request, message: str) -> HTMLResponse:
    return render(request, "contacts/import.html", status_code=422, report=None, error=message)
