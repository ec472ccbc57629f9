"""The API's contacts operations: import a file (``contacts import``) and upsert a JSON list of contacts,
both through the importer, so every row gets the same checks and the same row-level report.

A JSON list is written as a CSV file (the importer's own columns) and imported like a file: one validation,
one merge rule, one audit entry per batch. Row numbers in the report count the header as row 1, so the
first contact of the list is row 2.
"""

from __future__ import annotations

import csv
import hashlib
import tempfile
from pathlib import Path, PurePath
from typing import Any

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from broadcaster.contacts.header import FIELDS
from broadcaster.contacts.importer import import_contacts
from broadcaster.i18n import gettext as _
from broadcaster.web.api.auth import ApiCaller, api_requires
from broadcaster.web.api.errors import PROBLEMS, service_errors
from broadcaster.web.api.idempotency import replay_or_run
from broadcaster.web.auth import context_of
from broadcaster.web.problems import Problem

router = APIRouter(prefix="/contacts", tags=["contacts"], responses=PROBLEMS)

MAX_UPSERT = 10_000


class ImportReportOut(BaseModel):
    """The importer's row-level report (``contacts import --json``)."""

    model_config = {"extra": "allow"}

    total_rows: int
    created: int
    updated: int
    skipped: int
    problems: list[dict[str, Any]]


class ContactIn(BaseModel):
    """One contact, with the columns of a contacts file; other attributes under ``attributes``."""

    external_id: str | None = Field(default=None, max_length=100)
    full_name: str = Field(max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=320)
    segment: str | None = Field(default=None, max_length=64)
    agency: str | None = Field(default=None, max_length=200)
    district: str | None = Field(default=None, max_length=100)
    ward: str | None = Field(default=None, max_length=100)
    language: str | None = Field(default=None, max_length=8)
    tags: list[str] = Field(default_factory=list, max_length=50)
    attributes: dict[str, str] = Field(default_factory=dict, max_length=50)


def _import(request: Request, caller: ApiCaller, path: Path, fingerprint: bytes) -> JSONResponse:
    context = context_of(request)
    user = caller.user()

    def create(session: Session) -> tuple[int, Any]:
        with service_errors(field="file"):
            report = import_contacts(
                session, path=path, actor=user.login, clock=context.clock, limits=context.settings.contacts
            )
        return 201, report.as_dict()

    return replay_or_run(request, caller, fingerprint, create)


@router.post("/import", response_model=ImportReportOut, status_code=201)
async def import_file(
    request: Request,
    file: UploadFile = File(..., description="A contacts file: .csv (UTF-8) or .xlsx"),
    caller: ApiCaller = Depends(api_requires("contacts.import")),
) -> JSONResponse:
    """Import a contacts file as ``contacts import`` does; returns the row-level report. A problem with the
    file itself imports nothing (400). Honours ``Idempotency-Key``."""
    name = PurePath(file.filename or "contacts.csv").name or "contacts.csv"
    limit = context_of(request).settings.contacts.max_file_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise Problem(413, "too-large", _("Request refused"), _("The file is too large."), field="file")
    with tempfile.TemporaryDirectory(prefix="broadcaster-import-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        fingerprint = name.encode() + b"\n" + hashlib.sha256(data).digest()
        return await run_in_threadpool(_import, request, caller, path, fingerprint)


@router.post("/upsert", response_model=ImportReportOut, status_code=201)
def upsert(
    request: Request,
    contacts: list[ContactIn],
    caller: ApiCaller = Depends(api_requires("contacts.import")),
) -> JSONResponse:
    """Create or update contacts (matched as the importer matches rows: external id, then phone or e-mail);
    each row is checked as a file's row is, and refused rows are in the report. Honours ``Idempotency-Key``."""
    if not contacts or len(contacts) > MAX_UPSERT:
        raise Problem(
            422,
            "invalid-request",
            _("Invalid request"),
            _("Send 1 to %(n)s contacts.") % {"n": MAX_UPSERT},
            field="body",
        )
    extra = sorted({key for contact in contacts for key in contact.attributes} - set(FIELDS))
    with tempfile.TemporaryDirectory(prefix="broadcaster-upsert-") as folder:
        path = Path(folder) / "api-upsert.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([*FIELDS, *extra])
            for contact in contacts:
                values = contact.model_dump()
                row = ["; ".join(contact.tags) if f == "tags" else values.get(f) or "" for f in FIELDS]
                writer.writerow([*row, *(contact.attributes.get(key, "") for key in extra)])
        body = b"[" + b",".join(c.model_dump_json().encode() for c in contacts) + b"]"
        return _import(request, caller, path, body)
