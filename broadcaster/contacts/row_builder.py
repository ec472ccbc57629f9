"""One data row of a contacts file as a checked ``ContactRow``, or the problems that keep it out.

Phone numbers and e-mail addresses are normalised; external ids must be unique within the file.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from broadcaster.contacts.cell_text import WHITESPACE, control_problem, visible
from broadcaster.contacts.emails import EmailError, normalize_email
from broadcaster.contacts.header import Columns
from broadcaster.contacts.phones import Phone, PhoneError, PhoneKind, parse_phone
from broadcaster.contacts.records import ContactRow, RowProblem, Severity
from broadcaster.i18n import N_, Translatable

__all__ = ["Built", "RowBuilder"]

_TAG_SPLIT: Final = re.compile(r"[,;]")
# The fields a row reads by name; a column the header lacks reads as an empty cell.
_CELL_FIELDS: Final = (
    "full_name", "external_id", "phone", "email", "segment", "agency", "district", "ward", "language", "tags",
)  # fmt: skip


def _text(value: str) -> str | None:
    if not value:
        return None
    cleaned = unicodedata.normalize("NFC", value).strip()
    return cleaned or None


def _name(value: str) -> str:
    # NFC because files typed on macOS or copied from PDFs carry NFD ("Nguyễn" as "Nguyê" + U+0303).
    return WHITESPACE.sub(" ", unicodedata.normalize("NFC", value)).strip()


def _tags(value: str) -> tuple[str, ...]:
    if not value:
        return ()
    tags = (t.strip() for t in _TAG_SPLIT.split(unicodedata.normalize("NFC", value)))
    return tuple(dict.fromkeys(t for t in tags if t))


@dataclass(slots=True)
class Built:
    """A record built without the duplicate check: ``external_id`` is set when the record got as far as that
    check, which then keeps ``problems[:checked_at]`` and refuses the row (``RowBuilder.check_duplicate``)."""

    number: int
    row: ContactRow | None
    problems: list[RowProblem]
    external_id: str | None = None
    checked_at: int = 0


class RowBuilder:
    """Turns one data record into a ContactRow or a set of problems; remembers ids to catch duplicates.

    ``build`` does both steps; the importer runs them apart (``build_unchecked``, then ``check_duplicate``
    with the ids of earlier batches it keeps outside memory)."""

    def __init__(self, columns: Columns) -> None:
        self._columns = columns
        self._first_row_of_id: dict[str, int] = {}
        self._mapped = (*columns.fields.items(), *columns.extras.items())
        self._width = max(index for _column, index in self._mapped) + 1
        # The cells of _CELL_FIELDS, in that order, from a record padded with one empty cell.
        self._fields_of = operator.itemgetter(
            *(columns.fields.get(name, self._width) for name in _CELL_FIELDS)
        )

    def build(self, number: int, record: Sequence[str]) -> tuple[ContactRow | None, list[RowProblem]]:
        return self.check_duplicate(self.build_unchecked(number, record), self._first_row_of_id)

    @staticmethod
    def check_duplicate(
        built: Built, first_row_of_id: dict[str, int]
    ) -> tuple[ContactRow | None, list[RowProblem]]:
        """The row and its problems once its external id is checked against ``first_row_of_id`` (external id
        → the row that used it first), which records the id of a row kept."""
        if built.external_id is None:
            return built.row, built.problems
        first = first_row_of_id.get(built.external_id)
        if first is not None:
            duplicate = RowProblem(
                built.number,
                "external_id",
                built.external_id,
                Translatable(N_("duplicate external_id (first used on row %(row)s)"), row=first),
                "error",
            )
            return None, [*built.problems[: built.checked_at], duplicate]
        if built.row is not None:
            first_row_of_id[built.external_id] = built.number
        return built.row, built.problems

    def build_unchecked(self, number: int, record: Sequence[str]) -> Built:
        problems: list[RowProblem] = []

        def problem(column: str, value: str, reason: str, severity: Severity = "error") -> None:
            problems.append(RowProblem(number, column, value, reason, severity))

        width = self._width
        padded = [*record[:width], *([""] * (width + 1 - min(len(record), width)))]
        spill = [v for v in record[width:] if v.strip()] if len(record) > width else None
        if spill:
            problem(
                "",
                visible("; ".join(spill)),
                Translatable(N_("more cells than header columns; the extra cells are ignored")),
                "warning",
            )

        # One search over the row's cells; each cell is looked at only when the row holds a control character.
        if control_problem("".join(padded)) is not None:
            before = len(problems)
            for column, index in self._mapped:
                value = padded[index]
                control = control_problem(value)
                if control is not None:
                    problem(
                        column,
                        visible(value),
                        Translatable(N_("%(problem)s; retype the cell"), problem=control),
                    )
            if len(problems) > before:  # a cell of a column in use: the row is refused
                return Built(number, None, problems)

        (
            name_cell, external_id_cell, phone_cell, email_cell, segment_cell,
            agency_cell, district_cell, ward_cell, language_cell, tags_cell,
        ) = self._fields_of(padded)  # fmt: skip

        full_name = _name(name_cell)
        if not full_name:
            problem("full_name", name_cell, Translatable(N_("name is empty")))
            return Built(number, None, problems)

        external_id = _text(external_id_cell)
        checked_at = len(problems)

        raw_phone = _text(phone_cell)
        phone: Phone | None = None
        if raw_phone is not None:
            try:
                phone = parse_phone(raw_phone)
            except PhoneError as exc:
                problem("phone", raw_phone, exc.reason)
        if phone is not None:
            if phone.converted_from is not None:
                problem(
                    "phone",
                    raw_phone or "",
                    Translatable(N_("old 11-digit number converted to %(number)s"), number=phone.national),
                    "warning",
                )
            if phone.kind is PhoneKind.FIXED:
                problem("phone", raw_phone or "", Translatable(N_("landline: cannot receive SMS")), "warning")
            elif phone.kind is PhoneKind.OTHER:
                problem(
                    "phone",
                    raw_phone or "",
                    Translatable(N_("not a mobile number: cannot receive SMS")),
                    "warning",
                )
            if not phone.e164.startswith("+84"):
                problem(
                    "phone",
                    raw_phone or "",
                    Translatable(N_("number outside Vietnam (%(number)s)"), number=phone.e164),
                    "warning",
                )

        raw_email = _text(email_cell)
        email: str | None = None
        if raw_email is not None:
            try:
                email = normalize_email(raw_email)
            except EmailError as exc:
                problem("email", raw_email, exc.reason)

        if phone is None and email is None:
            if raw_phone is None and raw_email is None:
                problem("phone", "", Translatable(N_("neither a phone number nor an e-mail address")))
            return Built(number, None, problems, external_id, checked_at)

        attributes = {
            header: text
            for header, index in self._columns.extras.items()
            if (text := _text(padded[index])) is not None
        }
        row = ContactRow(
            row=number,
            external_id=external_id,
            full_name=full_name,
            phone=phone,
            email=email,
            segment=_text(segment_cell),
            agency=_text(agency_cell),
            district=_text(district_cell),
            ward=_text(ward_cell),
            language=(_text(language_cell) or "vi").lower(),
            tags=_tags(tags_cell),
            attributes=attributes,
            raw_phone=raw_phone,
            warnings=tuple(problems),
        )
        return Built(number, row, problems, external_id, checked_at)
