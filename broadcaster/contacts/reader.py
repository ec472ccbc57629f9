"""Read a contacts file (CSV in UTF-8, or XLSX) into checked ``ContactRow`` values and a list of row problems.

The file layout is docs/architecture.md §5 "Contacts file": columns ``external_id, full_name, phone, email,
segment, agency, district, ward, language, tags``; any other column becomes an attribute. Headers may also be
the Vietnamese names staff actually type ("Họ và tên", "Số điện thoại", "SĐT"…), with or without diacritics.

Problems with one row never stop the import: they are returned as ``RowProblem`` with the spreadsheet row
number (the header is row 1), so the operator can fix the file. Only problems with the file itself (not
readable, not UTF-8, no name column, no contacts, beyond the limits of ``[contacts]`` in the settings…) raise
``ContactsFileError``. Nothing here touches the database.

The steps have modules of their own: ``sources`` (CSV/XLSX cells), ``header`` (column names), ``row_builder``
(one row), ``records`` (what comes out); this module runs them over a file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Final

from broadcaster.contacts.header import FIELDS, map_header
from broadcaster.contacts.records import ContactRow, ContactsFileError, ReadResult, RowProblem
from broadcaster.contacts.row_builder import RowBuilder
from broadcaster.contacts.sources import csv_rows, xlsx_rows
from broadcaster.i18n import gettext as _
from broadcaster.settings_sections import ContactsSettings

__all__ = [
    "FIELDS",
    "ContactRow",
    "ContactsFileError",
    "ReadResult",
    "RowProblem",
    "read_contacts",
]

_SUPPORTED: Final = (".csv", ".xlsx")


def _read(path: Path, records: Iterable[tuple[int, list[str]]], limits: ContactsSettings) -> ReadResult:
    result = ReadResult(path=path, rows=[], problems=[], total_rows=0)
    builder: RowBuilder | None = None
    for number, record in records:
        if number > limits.max_rows + 1:  # counted before anything else, empty rows too: they cost time
            raise ContactsFileError(
                path,
                _("has more than %(max)s rows of contacts (setting contacts.max_rows)")
                % {"max": f"{limits.max_rows:,}"},
                fix=_(
                    "Split it into smaller files and import each, or raise max_rows in [contacts] of "
                    "broadcaster.toml."
                ),
            )
        if not any(v.strip() for v in record):
            continue  # completely empty rows (also before the header) are ignored silently
        if builder is None:
            builder = RowBuilder(map_header(path, record))
            continue
        result.total_rows += 1
        row, problems = builder.build(number, record)
        result.problems.extend(problems)
        if row is not None:
            result.rows.append(row)
    if builder is None:
        raise ContactsFileError(
            path, _("is empty"), fix=_("Put the header row and the contacts in it, then import again.")
        )
    if result.total_rows == 0:
        raise ContactsFileError(
            path,
            _("has a header row but no contacts"),
            fix=_("Add the contacts under the header, then import again."),
        )
    return result


def read_contacts(path: Path, *, limits: ContactsSettings | None = None) -> ReadResult:
    """Read a ``.csv`` (UTF-8, with or without BOM, "," or ";") or ``.xlsx`` (first sheet) contacts file,
    within ``limits`` (the ``[contacts]`` settings; their defaults when None)."""
    path = Path(path)
    limits = limits or ContactsSettings()
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read(path, csv_rows(path, limits), limits)
    if suffix == ".xlsx":
        return _read(path, xlsx_rows(path, limits), limits)
    hint = " " + _("(old Excel format)") if suffix == ".xls" else ""
    raise ContactsFileError(
        path,
        _('unsupported file type "%(type)s"') % {"type": suffix or path.name} + hint,
        fix=_("Save it as one of %(types)s (CSV in UTF-8) and import again.")
        % {"types": ", ".join(_SUPPORTED)},
    )
