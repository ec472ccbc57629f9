"""One data row of a contacts file as a checked ``ContactRow``, or the problems that keep it out.

Phone numbers and e-mail addresses are normalised; external ids must be unique within the file.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Final

from broadcaster.contacts.cell_text import WHITESPACE, control_problem, visible
from broadcaster.contacts.emails import EmailError, normalize_email
from broadcaster.contacts.header import Columns
from broadcaster.contacts.phones import Phone, PhoneError, PhoneKind, parse_phone
from broadcaster.contacts.records import ContactRow, RowProblem, Severity
from broadcaster.i18n import N_  # reasons stay English in the CLI; the web page translates them

__all__ = ["RowBuilder"]

_TAG_SPLIT: Final = re.compile(r"[,;]")


def _text(value: str) -> str | None:
    cleaned = unicodedata.normalize("NFC", value).strip()
    return cleaned or None


def _name(value: str) -> str:
    # NFC because files typed on macOS or copied from PDFs carry NFD ("Nguyễn" as "Nguyê" + U+0303).
    return WHITESPACE.sub(" ", unicodedata.normalize("NFC", value)).strip()


def _tags(value: str) -> tuple[str, ...]:
    tags = (t.strip() for t in _TAG_SPLIT.split(unicodedata.normalize("NFC", value)))
    return tuple(dict.fromkeys(t for t in tags if t))


class RowBuilder:
    """Turns one data record into a ContactRow or a set of problems; remembers ids to catch duplicates."""

    def __init__(self, columns: Columns) -> None:
        self._columns = columns
        self._first_row_of_id: dict[str, int] = {}

    def build(self, number: int, record: Sequence[str]) -> tuple[ContactRow | None, list[RowProblem]]:
        problems: list[RowProblem] = []

        def cell(name: str) -> str:
            index = self._columns.fields.get(name)
            return record[index] if index is not None and index < len(record) else ""

        def problem(column: str, value: str, reason: str, severity: Severity = "error") -> None:
            problems.append(RowProblem(number, column, value, reason, severity))

        width = max([*self._columns.fields.values(), *self._columns.extras.values()]) + 1
        spill = [v for v in record[width:] if v.strip()]
        if spill:
            problem(
                "",
                visible("; ".join(spill)),
                "more cells than header columns; the extra cells are ignored",
                "warning",
            )

        refused = False
        for column, index in (*self._columns.fields.items(), *self._columns.extras.items()):
            value = record[index] if index < len(record) else ""
            control = control_problem(value)
            if control is not None:
                problem(column, visible(value), f"{control}; retype the cell")
                refused = True
        if refused:
            return None, problems

        full_name = _name(cell("full_name"))
        if not full_name:
            problem("full_name", cell("full_name"), N_("name is empty"))
            return None, problems

        external_id = _text(cell("external_id"))
        if external_id is not None:
            first = self._first_row_of_id.get(external_id)
            if first is not None:
                problem("external_id", external_id, f"duplicate external_id (first used on row {first})")
                return None, problems

        raw_phone = _text(cell("phone"))
        phone: Phone | None = None
        if raw_phone is not None:
            try:
                phone = parse_phone(raw_phone)
            except PhoneError as exc:
                problem("phone", raw_phone, exc.reason)
        if phone is not None:
            if phone.converted_from is not None:
                problem(
                    "phone", raw_phone or "", f"old 11-digit number converted to {phone.national}", "warning"
                )
            if phone.kind is PhoneKind.FIXED:
                problem("phone", raw_phone or "", N_("landline: cannot receive SMS"), "warning")
            elif phone.kind is PhoneKind.OTHER:
                problem("phone", raw_phone or "", N_("not a mobile number: cannot receive SMS"), "warning")
            if not phone.e164.startswith("+84"):
                problem("phone", raw_phone or "", f"number outside Vietnam ({phone.e164})", "warning")

        raw_email = _text(cell("email"))
        email: str | None = None
        if raw_email is not None:
            try:
                email = normalize_email(raw_email)
            except EmailError as exc:
                problem("email", raw_email, exc.reason)

        if phone is None and email is None:
            if raw_phone is None and raw_email is None:
                problem("phone", "", N_("neither a phone number nor an e-mail address"))
            return None, problems

        if external_id is not None:
            self._first_row_of_id[external_id] = number
        attributes = {
            header: text
            for header, index in self._columns.extras.items()
            if index < len(record) and (text := _text(record[index])) is not None
        }
        row = ContactRow(
            row=number,
            external_id=external_id,
            full_name=full_name,
            phone=phone,
            email=email,
            segment=_text(cell("segment")),
            agency=_text(cell("agency")),
            district=_text(cell("district")),
            ward=_text(cell("ward")),
            language=(_text(cell("language")) or "vi").lower(),
            tags=_tags(cell("tags")),
            attributes=attributes,
            raw_phone=raw_phone,
            warnings=tuple(problems),
        )
        return row, problems
