"""Import a contacts file into the database: merge, report every row, and import nothing on a fatal error.

Merging: a row with an ``external_id`` updates the contact with that id; otherwise a contact with the same
name and the same phone (or the same e-mail) is the same person. Every merge is reported, so the officer
can see which rows touched existing people. Opt-out flags are never reset by an import.

Campaigns choose their audience by segment, so a contact left without one is reached by no campaign: the
report lists those rows (``without_segment``) for the officer to fill in.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.clock import Clock
from broadcaster.contacts.reader import ContactRow, ContactsFileError, RowProblem, read_contacts
from broadcaster.db.models import Contact, ContactImport
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.settings_sections import ContactsSettings


class ContactsImportError(UserError):
    """The whole file was refused; nothing was imported."""


@dataclass(frozen=True)
class Merge:
    row: int
    contact_id: int
    matched_by: str  # external_id | name+phone | name+email | earlier row


@dataclass
class ImportReport:
    file: str
    total_rows: int
    created: int = 0
    updated: int = 0
    skipped: int = 0
    merges: list[Merge] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    without_segment: list[int] = field(default_factory=list)  # rows whose contact no campaign can reach
    import_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "import_id": self.import_id,
            "total_rows": self.total_rows,
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "merges": [asdict(m) for m in self.merges],
            "problems": [asdict(p) for p in self.problems],
            "without_segment": self.without_segment,
        }


class _Index:
    """Existing contacts by the keys a row can match on (loaded once per import)."""

    def __init__(self, session: Session) -> None:
        self.by_external: dict[str, Contact] = {}
        self.by_name_phone: dict[tuple[str, str], Contact] = {}
        self.by_name_email: dict[tuple[str, str], Contact] = {}
        for contact in session.scalars(select(Contact)):
            self.add(contact)

    def add(self, contact: Contact) -> None:
        if contact.external_id:
            self.by_external[contact.external_id] = contact
        name = contact.full_name.casefold()
        if contact.phone:
            self.by_name_phone[(name, contact.phone)] = contact
        if contact.email:
            # Mailbox names are case-insensitive in practice; the sender treats them so too.
            self.by_name_email[(name, contact.email.casefold())] = contact

    def match(self, row: ContactRow) -> tuple[Contact | None, str]:
        if row.external_id:
            return self.by_external.get(row.external_id), "external_id"
        name = row.full_name.casefold()
        if row.phone is not None and (found := self.by_name_phone.get((name, row.phone.e164))):
            return found, "name+phone"
        if row.email and (found := self.by_name_email.get((name, row.email.casefold()))):
            return found, "name+email"
        return None, ""


def _apply(contact: Contact, row: ContactRow) -> None:
    contact.full_name = row.full_name
    if row.external_id:
        contact.external_id = row.external_id
    if row.phone is not None:
        contact.phone = row.phone.e164
        contact.phone_kind = row.phone.kind.value
        contact.carrier = row.phone.carrier
    if row.email:
        contact.email = row.email
    for name in ("segment", "agency", "district", "ward"):
        value = getattr(row, name)
        if value is not None:
            setattr(contact, name, value)
    contact.language = row.language
    if row.tags:
        contact.tags = sorted(set(contact.tags or []) | set(row.tags))
    if row.attributes:
        contact.attributes = {**(contact.attributes or {}), **row.attributes}


def import_contacts(
    session: Session, *, path: Path, actor: str, clock: Clock, limits: ContactsSettings | None = None
) -> ImportReport:
    """Read, validate and merge ``path`` inside the caller's transaction, within ``limits`` (the ``[contacts]``
    settings; their defaults when None)."""
    try:
        result = read_contacts(path, limits=limits)
    except ContactsFileError as exc:
        raise ContactsImportError(str(exc) + " " + _("Nothing was imported.")) from None
    except OSError as exc:
        raise ContactsImportError(
            _("%(path)s: cannot read the file (%(reason)s). Nothing was imported.")
            % {"path": path, "reason": exc.strerror}
        ) from None

    now = clock.now()
    report = ImportReport(file=str(path), total_rows=result.total_rows, problems=list(result.problems))
    report.skipped = result.skipped_rows
    index = _Index(session)
    batch = ContactImport(
        filename=path.name,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        imported_by=actor,
        imported_at=now,
        rows_total=result.total_rows,
        created=0,
        updated=0,
        skipped=0,
        report={},
    )
    session.add(batch)
    session.flush()
    created_this_file: set[int] = set()

    for row in result.rows:
        contact, matched_by = index.match(row)
        if contact is None:
            contact = Contact(
                full_name=row.full_name,
                tags=[],
                attributes={},
                language=row.language,
                created_at=now,
                updated_at=now,
                import_id=batch.id,
            )
            _apply(contact, row)
            session.add(contact)
            session.flush()
            created_this_file.add(contact.id)
            report.created += 1
        else:
            _apply(contact, row)
            contact.updated_at = now
            if contact.id in created_this_file:
                matched_by = f"earlier row ({matched_by})"
            else:
                report.updated += 1
            report.merges.append(Merge(row=row.row, contact_id=contact.id, matched_by=matched_by))
        if not contact.segment:
            report.without_segment.append(row.row)
        index.add(contact)

    batch.created, batch.updated, batch.skipped = report.created, report.updated, report.skipped
    report.import_id = batch.id
    batch.report = report.as_dict()
    audit.record(
        session,
        actor=actor,
        action="contacts.import",
        subject_type="contact_import",
        subject_id=batch.id,
        at=now,
        details={
            "file": path.name,
            "sha256": batch.sha256,
            "created": report.created,
            "updated": report.updated,
            "skipped": report.skipped,
            "problems": len(report.problems),
            "without_segment": len(report.without_segment),
        },
    )
    return report
