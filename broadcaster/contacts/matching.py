"""Which stored contact a row of a contacts file is, one batch of rows at a time: the candidates come from a
few ``IN`` queries on indexed columns, not from every contact loaded at once.

A row with an ``external_id`` is the contact with that id; otherwise a contact with the same name (case
ignored) and the same phone, or else the same e-mail (case ignored), is the same person. Contacts are plain
dicts of the ``contacts`` columns here: the importer writes them back in bulk.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.orm import Session

from broadcaster.contacts.records import ContactRow
from broadcaster.db.bulk import where_in
from broadcaster.db.models import Contact

__all__ = ["COLUMNS", "BatchIndex", "StoredContact", "apply_row", "new_contact"]

StoredContact = dict[str, Any]  # the contacts columns; "id" only once stored

_TABLE: Final = cast(Table, Contact.__table__)
COLUMNS: Final = tuple(column.name for column in _TABLE.columns)
# Parameters per IN query: under SQLite's limit of variables per statement, whatever its build.
_IN_PAGE: Final = 900
# A new contact's empty tags and attributes: the same objects for every contact, so that the insert turns them
# into JSON once for a run of contacts (``insert_whole_rows``); ``apply_row`` replaces them, never changes them.
_NO_TAGS: Final[list[str]] = []
_NO_ATTRIBUTES: Final[dict[str, str]] = {}


def new_contact(row: ContactRow, *, now: datetime, import_id: int) -> StoredContact:
    """The contact a row makes: ``apply_row`` on an empty contact."""
    contact: StoredContact = {
        "external_id": None,
        "phone": None,
        "phone_kind": None,
        "carrier": None,
        "email": None,
        "segment": None,
        "agency": None,
        "district": None,
        "ward": None,
        "tags": _NO_TAGS,
        "attributes": _NO_ATTRIBUTES,
        "created_at": now,
        "updated_at": now,
        "import_id": import_id,
    }
    apply_row(contact, row)
    return contact


def apply_row(contact: StoredContact, row: ContactRow) -> None:
    """What a row changes on its contact: the fields it has; tags and attributes are added to, never
    removed; opt-outs live in the consent ledger, which an import does not touch."""
    contact["full_name"] = row.full_name
    if row.external_id:
        contact["external_id"] = row.external_id
    if row.phone is not None:
        contact["phone"] = row.phone.e164
        contact["phone_kind"] = row.phone.kind.value
        contact["carrier"] = row.phone.carrier
    if row.email:
        contact["email"] = row.email
    if row.segment is not None:
        contact["segment"] = row.segment
    if row.agency is not None:
        contact["agency"] = row.agency
    if row.district is not None:
        contact["district"] = row.district
    if row.ward is not None:
        contact["ward"] = row.ward
    contact["language"] = row.language
    if row.tags:
        contact["tags"] = sorted(set(contact["tags"] or []) | set(row.tags))
    if row.attributes:
        contact["attributes"] = {**(contact["attributes"] or {}), **row.attributes}


class BatchIndex:
    """The stored contacts a batch of rows can match, by the keys it can match on; the batch's own new
    contacts are added as its rows are merged, so that a later row of the batch finds an earlier one."""

    def __init__(self, session: Session, rows: Sequence[ContactRow]) -> None:
        self._session = session
        self.by_external: dict[str, StoredContact] = {}
        self.by_name_phone: dict[tuple[str, str], StoredContact] = {}
        self.by_name_email: dict[tuple[str, str], StoredContact] = {}
        loaded: dict[int, StoredContact] = {}
        without_id = [row for row in rows if not row.external_id]
        self._load(loaded, _TABLE.c.external_id, {row.external_id for row in rows if row.external_id})
        self._load(loaded, _TABLE.c.phone, {row.phone.e164 for row in without_id if row.phone is not None})
        self._index(loaded)
        # Only the rows that no stored contact matches by name and phone can need their e-mail.
        emails = {
            row.email.lower()
            for row in without_id
            if row.email
            and (row.phone is None or (row.full_name.casefold(), row.phone.e164) not in self.by_name_phone)
        }
        self._load(loaded, func.lower(_TABLE.c.email), emails)
        self._index(loaded)

    def _load(self, loaded: dict[int, StoredContact], key: ColumnElement[Any], values: set[str]) -> None:
        ordered = sorted(values)
        for start in range(0, len(ordered), _IN_PAGE):
            query = where_in(self._session, select(_TABLE), key, ordered[start : start + _IN_PAGE])
            for found in self._session.execute(query).mappings():
                loaded.setdefault(found["id"], dict(found))

    def _index(self, loaded: dict[int, StoredContact]) -> None:
        # By id: of two stored contacts with the same key, the newer is the one found, as it always was.
        for contact_id in sorted(loaded):
            self.add(loaded[contact_id])

    def add(self, contact: StoredContact) -> None:
        if contact["external_id"]:
            self.by_external[contact["external_id"]] = contact
        name = contact["full_name"].casefold()
        if contact["phone"]:
            self.by_name_phone[(name, contact["phone"])] = contact
        if contact["email"]:
            # Mailbox names are case-insensitive in practice; the sender treats them so too.
            self.by_name_email[(name, contact["email"].casefold())] = contact

    def match(self, row: ContactRow) -> tuple[StoredContact | None, str]:
        if row.external_id:
            return self.by_external.get(row.external_id), "external_id"
        name = row.full_name.casefold()
        if row.phone is not None and (found := self.by_name_phone.get((name, row.phone.e164))):
            return found, "name+phone"
        if row.email and (found := self.by_name_email.get((name, row.email.casefold()))):
            return found, "name+email"
        return None, ""


def unique(contacts: Iterable[StoredContact]) -> list[StoredContact]:
    """Each contact once, in the order first met."""
    return list({id(contact): contact for contact in contacts}.values())
