"""Cell sources of a contacts file: each yields (row number, cells as text) for every row, the header included.

CSV is read as UTF-8 (with or without BOM, "," or ";"); XLSX is the first sheet, read streaming. Both refuse
a file beyond the ``[contacts]`` limits before reading it.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import BinaryIO, Final

from broadcaster.contacts.records import ContactsFileError, ReadProgress
from broadcaster.i18n import gettext as _
from broadcaster.settings_sections import ContactsSettings

__all__ = ["csv_rows", "xlsx_rows"]

_SNIFF_BYTES: Final = 64 * 1024
# Columns read from an XLSX sheet: far more than a contacts file has, and a bound on the work per row (a
# single cell in column XFD would otherwise make every row 16,384 cells wide).
_XLSX_MAX_COLUMNS: Final = 256


_UTF8_BOM: Final = b"\xef\xbb\xbf"


def _not_utf8(path: Path) -> ContactsFileError:
    """The error for a file that does not decode, naming the first bad byte, its offset (after a BOM) and its
    line. Found by a second, streaming pass: UTF-8 never has a newline byte inside a character, so each line
    decodes on its own."""
    offset, line_number = 0, 1
    with path.open("rb") as data:
        data.seek(len(_UTF8_BOM) if data.read(len(_UTF8_BOM)) == _UTF8_BOM else 0)
        for line in data:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return ContactsFileError(
                    path,
                    _(
                        "not UTF-8 text: byte 0x%(byte)s at offset %(offset)s (line %(line)s) cannot be decoded"
                    )
                    % {"byte": f"{line[exc.start]:02X}", "offset": offset + exc.start, "line": line_number},
                    fix=_(
                        'Save the file as "CSV UTF-8" (Excel: File › Save As › CSV UTF-8) and import again.'
                    ),
                )
            offset += len(line)
            line_number += 1
    raise AssertionError(f"{path} decoded on the second pass")  # the file changed while it was read


def _sniff_delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;").delimiter
    except csv.Error:
        # The sniffer gives up on short or irregular samples; the header line decides, "," by default.
        first_line = sample.split("\n", 1)[0]
        return ";" if first_line.count(";") > first_line.count(",") else ","


def _too_big(path: Path, size: int, limits: ContactsSettings, *, unpacked: bool) -> ContactsFileError:
    return ContactsFileError(
        path,
        (
            _("unpacks to %(size)s MB, more than the %(max)s MB allowed (setting contacts.max_file_mb)")
            if unpacked
            else _("is %(size)s MB, more than the %(max)s MB allowed (setting contacts.max_file_mb)")
        )
        % {"size": f"{size / 1024 / 1024:,.1f}", "max": f"{limits.max_file_mb:,}"},
        fix=_(
            "Split it into smaller files and import each, or raise max_file_mb in [contacts] of "
            "broadcaster.toml."
        ),
    )


class _Lines:
    """The text lines of a UTF-8 file, streamed (a BOM dropped, line ends kept as ``newline=""`` keeps
    them), and how many bytes of the file have been read so far (for the progress)."""

    def __init__(self, path: Path, binary: BinaryIO) -> None:
        self._path = path
        self._binary = binary
        self._text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")

    def read_sample(self) -> str:
        sample = self._decoded(lambda: self._text.read(_SNIFF_BYTES))
        self._text.seek(0)  # TextIOWrapper's seek to the start resets its decoder: the BOM is dropped again
        return sample

    def __iter__(self) -> Iterator[str]:
        while line := self._decoded(self._text.readline):
            yield line

    def _decoded(self, read: Callable[[], str]) -> str:
        try:
            return read()
        except UnicodeDecodeError:
            raise _not_utf8(self._path) from None

    @property
    def bytes_read(self) -> int:
        return self._binary.tell()


def csv_rows(
    path: Path, limits: ContactsSettings, *, progress: ReadProgress | None = None
) -> Iterator[tuple[int, list[str]]]:
    """Streams the file: memory stays the same whatever its size; a late decoding or CSV error is raised
    when it is reached (the importer's transaction then imports nothing)."""
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            raise _too_big(path, size, limits, unpacked=False)
        binary = path.open("rb")
    except OSError as exc:
        raise ContactsFileError(
            path,
            _("cannot be read (%(reason)s)") % {"reason": exc.strerror},
            fix=_("Check the path and the permissions."),
        ) from exc
    with binary:
        lines = _Lines(path, binary)
        reader = csv.reader(lines, delimiter=_sniff_delimiter(lines.read_sample()))
        if progress is not None:
            progress.total_bytes = size
        try:
            # Records are numbered like spreadsheet rows (header = 1) even when a quoted cell spans lines,
            # because the operator fixes the file in a spreadsheet.
            for number, record in enumerate(reader, start=1):
                if progress is not None:
                    progress.bytes_read = lines.bytes_read
                yield number, record
        except csv.Error as exc:
            raise ContactsFileError(
                path,
                _("broken CSV near line %(line)s (%(error)s)") % {"line": reader.line_num, "error": exc},
                fix=_("Check the quotes on that line and import again."),
            ) from exc


def _cell_text(value: object) -> str:
    """Text of one XLSX cell; whole numbers lose their ".0" (Excel stores 0912345678 as 912345678.0)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _check_unpacked_size(path: Path, limits: ContactsSettings) -> None:
    """Refuse a workbook whose parts unpack to more than the limit, before any of it is unpacked (a "zip
    bomb"). The sizes come from the zip's directory; Python's zipfile never unpacks more than they say."""
    with zipfile.ZipFile(path) as archive:
        size = sum(info.file_size for info in archive.infolist())
    if size > limits.max_file_bytes:
        raise _too_big(path, size, limits, unpacked=True)


def xlsx_rows(
    path: Path, limits: ContactsSettings, *, progress: ReadProgress | None = None
) -> Iterator[tuple[int, list[str]]]:
    """Streams the first sheet (read-only mode); ``progress`` gets no byte count (a workbook is a zip: its
    rows cannot be told from the bytes read), only the rows the reader counts."""
    # openpyxl (and the numpy it loads) is imported here, not at the top: it costs over half a second, and
    # every `broadcaster` command and `broadcaster serve` import this module while only XLSX imports need it.
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        _check_unpacked_size(path, limits)
        workbook = load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError as exc:
        raise ContactsFileError(path, _("does not exist"), fix=_("Check the path.")) from exc
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ContactsFileError(
            path,
            _("is not a readable XLSX workbook (%(error)s)") % {"error": exc},
            fix=_("Open it in Excel or LibreOffice, save it as .xlsx (or CSV UTF-8) and import again."),
        ) from exc
    try:
        if not workbook.worksheets:
            return
        sheet = workbook.worksheets[0]
        # The sheet's declared dimension may claim any size, and every row would be padded to it: forget it,
        # so that each row is as wide as its last cell in the file (read streaming, row by row).
        sheet.reset_dimensions()
        for number, values in enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1):
            beyond = values[_XLSX_MAX_COLUMNS:]
            if beyond.count(None) != len(beyond):  # cells formatted but empty out there are harmless
                raise ContactsFileError(
                    path,
                    _("row %(row)s has cells beyond column %(max)s")
                    % {"row": number, "max": _XLSX_MAX_COLUMNS},
                    fix=_("Delete the columns after the last one you use and import again."),
                )
            yield number, [_cell_text(v) for v in values[:_XLSX_MAX_COLUMNS]]
    finally:
        workbook.close()
