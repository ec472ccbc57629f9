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

from collections.abc import Iterator
from pathlib import Path
from typing import Final

from broadcaster.contacts.header import FIELDS, Columns, map_header
from broadcaster.contacts.records import ContactRow, ContactsFileError, ReadProgress, ReadResult, RowProblem
from broadcaster.contacts.row_builder import RowBuilder
from broadcaster.contacts.sources import csv_rows, xlsx_rows
from broadcaster.i18n import gettext as _
from broadcaster.settings_sections import ContactsSettings

__all__ = [
    "FIELDS",
    "ContactRow",
    "ContactsFileError",
    "DataRecords",
    "ReadProgress",
    "ReadResult",
    "RowProblem",
    "read_contacts",
]

_SUPPORTED: Final = (".csv", ".xlsx")


class DataRecords:
    """The data records of a file, streamed: ``(row number, cells)`` of each row after the header that is not
    completely empty. ``columns`` is the header's mapping, known once the first record is out. The file-level
    errors (empty, no contacts, beyond ``max_rows``) are raised where the stream meets them, the last ones at
    its end."""

    def __init__(
        self, path: Path, *, limits: ContactsSettings | None = None, progress: ReadProgress | None = None
    ) -> None:
        self.path = Path(path)
        self.limits = limits or ContactsSettings()
        self.progress = progress or ReadProgress()
        self.columns: Columns | None = None
        suffix = self.path.suffix.lower()
        if suffix == ".csv":
            self._cells = csv_rows(self.path, self.limits, progress=self.progress)
        elif suffix == ".xlsx":
            self._cells = xlsx_rows(self.path, self.limits, progress=self.progress)
        else:
            hint = " " + _("(old Excel format)") if suffix == ".xls" else ""
            raise ContactsFileError(
                self.path,
                _('unsupported file type "%(type)s"') % {"type": suffix or self.path.name} + hint,
                fix=_("Save it as one of %(types)s (CSV in UTF-8) and import again.")
                % {"types": ", ".join(_SUPPORTED)},
            )

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        path, limits, progress = self.path, self.limits, self.progress
        for number, record in self._cells:
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
            if self.columns is None:
                self.columns = map_header(path, record)
                continue
            progress.rows += 1
            yield number, record
        if self.columns is None:
            raise ContactsFileError(
                path, _("is empty"), fix=_("Put the header row and the contacts in it, then import again.")
            )
        if progress.rows == 0:
            raise ContactsFileError(
                path,
                _("has a header row but no contacts"),
                fix=_("Add the contacts under the header, then import again."),
            )


def read_contacts(path: Path, *, limits: ContactsSettings | None = None) -> ReadResult:
    """Read a ``.csv`` (UTF-8, with or without BOM, "," or ";") or ``.xlsx`` (first sheet) contacts file,
    within ``limits`` (the ``[contacts]`` settings; their defaults when None), all of it in memory (the
    importer streams ``DataRecords`` instead)."""
    records = DataRecords(path, limits=limits)
    result = ReadResult(path=records.path, rows=[], problems=[], total_rows=0)
    builder: RowBuilder | None = None
    for number, record in records:
        if builder is None:
            assert records.columns is not None  # known once a record is out
            builder = RowBuilder(records.columns)
        result.total_rows += 1
        row, problems = builder.build(number, record)
        result.problems.extend(problems)
        if row is not None:
            result.rows.append(row)
    return result
