"""Read a contacts file (CSV in UTF-8, or XLSX) into checked ``ContactRow`` values and a list of row problems.

The file layout is docs/architecture.md §5 "Contacts file": columns ``external_id, full_name, phone, email,
segment, agency, district, ward, language, tags``; any other column becomes an attribute. Headers may also be
the Vietnamese names staff actually type ("Họ và tên", "Số điện thoại", "SĐT"…), with or without diacritics.

Problems with one row never stop the import: they are returned as ``RowProblem`` with the spreadsheet row
number (the header is row 1), so the operator can fix the file. Only problems with the file itself (not
readable, not UTF-8, no name column, no contacts, beyond the limits of ``[contacts]`` in the settings…) raise
``ContactsFileError``. Nothing here touches the database.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Final, Literal

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from broadcaster.contacts.emails import EmailError, normalize_email
from broadcaster.contacts.phones import Phone, PhoneError, PhoneKind, parse_phone
from broadcaster.settings import ContactsSettings

__all__ = [
    "FIELDS",
    "ContactRow",
    "ContactsFileError",
    "ReadResult",
    "RowProblem",
    "read_contacts",
]

Severity = Literal["error", "warning"]

FIELDS: Final = (
    "external_id",
    "full_name",
    "phone",
    "email",
    "segment",
    "agency",
    "district",
    "ward",
    "language",
    "tags",
)

# Header aliases → field. Matching ignores case, surrounding/duplicate spaces and Vietnamese diacritics
# (see _header_key), so "SĐT", "sdt" and "Sdt" all match; list each alias once in its usual spelling.
_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "external_id": ("Mã",),
    "full_name": ("Họ và tên", "Họ tên"),
    "phone": ("Số điện thoại", "Điện thoại", "SĐT"),
    "email": ("Thư điện tử", "E-mail"),
    "segment": ("Nhóm", "Đối tượng"),
    "agency": ("Cơ quan", "Đơn vị"),
    "district": ("Quận/Huyện", "Quận"),
    "ward": ("Phường/Xã", "Phường"),
    "language": ("Ngôn ngữ",),
    "tags": ("Nhãn",),
}

_WHITESPACE: Final = re.compile(r"\s+")
_TAG_SPLIT: Final = re.compile(r"[,;]")
_SUPPORTED: Final = (".csv", ".xlsx")
_SNIFF_BYTES: Final = 64 * 1024
# Control characters (Unicode category Cc: NUL, ESC, DEL, C1…) are invisible in a spreadsheet and break
# messages and exports; tab and line breaks are ordinary in a cell (Alt+Enter in Excel).
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Columns read from an XLSX sheet: far more than a contacts file has, and a bound on the work per row (a
# single cell in column XFD would otherwise make every row 16,384 cells wide).
_XLSX_MAX_COLUMNS: Final = 256


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int  # spreadsheet row number, header = 1
    column: str  # field name ("phone"), or the header as written for attribute columns
    value: str
    reason: str
    severity: Severity


@dataclass(frozen=True, slots=True)
class ContactRow:
    row: int
    external_id: str | None
    full_name: str
    phone: Phone | None
    email: str | None
    segment: str | None
    agency: str | None
    district: str | None
    ward: str | None
    language: str
    tags: tuple[str, ...]
    attributes: dict[str, str]
    raw_phone: str | None  # the cell as read, before normalisation (for the operator's report)
    warnings: tuple[RowProblem, ...]  # problems of this row that did not stop it being imported


@dataclass
class ReadResult:
    path: Path
    rows: list[ContactRow]
    problems: list[RowProblem]  # every problem, of kept and of skipped rows, in file order
    total_rows: int  # data rows that were not completely empty

    @property
    def errors(self) -> list[RowProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def skipped_rows(self) -> int:
        return self.total_rows - len(self.rows)


class ContactsFileError(Exception):
    """The file as a whole cannot be imported; the message names the file and says what to do."""

    def __init__(self, path: Path, problem: str, *, fix: str) -> None:
        super().__init__(f"{path}: {problem}. {fix}")
        self.path = path
        self.problem = problem
        self.fix = fix


def _strip_diacritics(text: str) -> str:
    # NFD splits "ễ" into "e" + combining marks; "đ" does not decompose and is mapped by hand (docs/domain.md §2).
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return bare.replace("đ", "d").replace("Đ", "D")


def _visible(value: str) -> str:
    """``value`` with its control characters spelled out (``\\x00``), fit for a report or a JSON column."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", value)


def _control_problem(value: str) -> str | None:
    """Why ``value`` is refused, or None: it holds a control character."""
    found = _CONTROL.search(value)
    if found is None:
        return None
    return f"control character U+{ord(found.group()):04X} (invisible in a spreadsheet)"


def _header_key(header: str) -> str:
    text = _WHITESPACE.sub(" ", unicodedata.normalize("NFC", header)).strip().casefold()
    return _strip_diacritics(text).replace("_", " ")


_HEADER_FIELDS: Final[dict[str, str]] = {
    _header_key(name): field_name
    for field_name, aliases in _ALIASES.items()
    for name in (field_name, *aliases)
}


@dataclass(slots=True)
class _Columns:
    fields: dict[str, int] = field(default_factory=dict)  # field → column index
    extras: dict[str, int] = field(default_factory=dict)  # header as written → column index


def _map_header(path: Path, header: Sequence[str]) -> _Columns:
    columns = _Columns()
    seen: dict[str, str] = {}  # header key → header as written, to report duplicates by their spelling
    for index, cell in enumerate(header):
        written = unicodedata.normalize("NFC", cell).strip()
        if not written:
            continue  # spreadsheets often carry blank trailing header cells
        control = _control_problem(written)
        if control is not None:
            raise ContactsFileError(
                path,
                f'header column {index + 1} "{_visible(written)}" holds a {control}',
                fix="Retype that column name in the first row and import again.",
            )
        key = _header_key(written)
        target = _HEADER_FIELDS.get(key, key)
        if target in seen:
            raise ContactsFileError(
                path,
                f'columns "{seen[target]}" and "{written}" are duplicates (both mean "{target}")',
                fix="Keep one of them in the header row and import again.",
            )
        seen[target] = written
        if target in FIELDS:
            columns.fields[target] = index
        else:
            columns.extras[written] = index
    if "full_name" not in columns.fields:
        raise ContactsFileError(
            path,
            'missing the name column (header "full_name" or "Họ và tên")',
            fix="Add that column to the first row and import again.",
        )
    if "phone" not in columns.fields and "email" not in columns.fields:
        raise ContactsFileError(
            path,
            'missing a phone or an e-mail column (header "phone"/"Số điện thoại" or "email")',
            fix="Add at least one of them to the first row and import again.",
        )
    return columns


# ---------------------------------------------------------------------------------------------------------
# Cell sources: each yields (row number, list of cells as text) for every line/row, the header included.
# ---------------------------------------------------------------------------------------------------------


def _decode_utf8(path: Path, data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ContactsFileError(
            path,
            f"not UTF-8 text: byte 0x{data[exc.start]:02X} at offset {exc.start} (line {line}) "
            "cannot be decoded",
            fix='Save the file as "CSV UTF-8" (Excel: File › Save As › CSV UTF-8) and import again.',
        ) from exc


def _sniff_delimiter(text: str) -> str:
    sample = text[:_SNIFF_BYTES]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;").delimiter
    except csv.Error:
        # The sniffer gives up on short or irregular samples; the header line decides, "," by default.
        first_line = sample.split("\n", 1)[0]
        return ";" if first_line.count(";") > first_line.count(",") else ","


def _too_big(path: Path, size: int, limits: ContactsSettings, *, what: str) -> ContactsFileError:
    return ContactsFileError(
        path,
        f"{what} {size / 1024 / 1024:,.1f} MB, more than the {limits.max_file_mb:,} MB allowed "
        "(setting contacts.max_file_mb)",
        fix="Split it into smaller files and import each, or raise max_file_mb in [contacts] of "
        "broadcaster.toml.",
    )


def _csv_rows(path: Path, limits: ContactsSettings) -> Iterator[tuple[int, list[str]]]:
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            raise _too_big(path, size, limits, what="is")
        data = path.read_bytes()
    except OSError as exc:
        raise ContactsFileError(
            path, f"cannot be read ({exc.strerror})", fix="Check the path and the permissions."
        ) from exc
    text = _decode_utf8(path, data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
    try:
        # Records are numbered like spreadsheet rows (header = 1) even when a quoted cell spans lines,
        # because the operator fixes the file in a spreadsheet.
        yield from enumerate(reader, start=1)
    except csv.Error as exc:
        raise ContactsFileError(
            path,
            f"broken CSV near line {reader.line_num} ({exc})",
            fix="Check the quotes on that line and import again.",
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
        raise _too_big(path, size, limits, what="unpacks to")


def _xlsx_rows(path: Path, limits: ContactsSettings) -> Iterator[tuple[int, list[str]]]:
    try:
        _check_unpacked_size(path, limits)
        workbook = load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError as exc:
        raise ContactsFileError(path, "does not exist", fix="Check the path.") from exc
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ContactsFileError(
            path,
            f"is not a readable XLSX workbook ({exc})",
            fix="Open it in Excel or LibreOffice, save it as .xlsx (or CSV UTF-8) and import again.",
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
                    f"row {number} has cells beyond column {_XLSX_MAX_COLUMNS}",
                    fix="Delete the columns after the last one you use and import again.",
                )
            yield number, [_cell_text(v) for v in values[:_XLSX_MAX_COLUMNS]]
    finally:
        workbook.close()


# ---------------------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------------------


def _text(value: str) -> str | None:
    cleaned = unicodedata.normalize("NFC", value).strip()
    return cleaned or None


def _name(value: str) -> str:
    # NFC because files typed on macOS or copied from PDFs carry NFD ("Nguyễn" as "Nguyê" + U+0303).
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", value)).strip()


def _tags(value: str) -> tuple[str, ...]:
    tags = (t.strip() for t in _TAG_SPLIT.split(unicodedata.normalize("NFC", value)))
    return tuple(dict.fromkeys(t for t in tags if t))


class _RowBuilder:
    """Turns one data record into a ContactRow or a set of problems; remembers ids to catch duplicates."""

    def __init__(self, columns: _Columns) -> None:
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
                _visible("; ".join(spill)),
                "more cells than header columns; the extra cells are ignored",
                "warning",
            )

        refused = False
        for column, index in (*self._columns.fields.items(), *self._columns.extras.items()):
            value = record[index] if index < len(record) else ""
            control = _control_problem(value)
            if control is not None:
                problem(column, _visible(value), f"{control}; retype the cell")
                refused = True
        if refused:
            return None, problems

        full_name = _name(cell("full_name"))
        if not full_name:
            problem("full_name", cell("full_name"), "name is empty")
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
                problem("phone", raw_phone or "", "landline: cannot receive SMS", "warning")
            elif phone.kind is PhoneKind.OTHER:
                problem("phone", raw_phone or "", "not a mobile number: cannot receive SMS", "warning")
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
                problem("phone", "", "neither a phone number nor an e-mail address")
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


def _read(path: Path, records: Iterable[tuple[int, list[str]]], limits: ContactsSettings) -> ReadResult:
    result = ReadResult(path=path, rows=[], problems=[], total_rows=0)
    builder: _RowBuilder | None = None
    for number, record in records:
        if number > limits.max_rows + 1:  # counted before anything else, empty rows too: they cost time
            raise ContactsFileError(
                path,
                f"has more than {limits.max_rows:,} rows of contacts (setting contacts.max_rows)",
                fix="Split it into smaller files and import each, or raise max_rows in [contacts] of "
                "broadcaster.toml.",
            )
        if not any(v.strip() for v in record):
            continue  # completely empty rows (also before the header) are ignored silently
        if builder is None:
            builder = _RowBuilder(_map_header(path, record))
            continue
        result.total_rows += 1
        row, problems = builder.build(number, record)
        result.problems.extend(problems)
        if row is not None:
            result.rows.append(row)
    if builder is None:
        raise ContactsFileError(
            path, "is empty", fix="Put the header row and the contacts in it, then import again."
        )
    if result.total_rows == 0:
        raise ContactsFileError(
            path,
            "has a header row but no contacts",
            fix="Add the contacts under the header, then import again.",
        )
    return result


def read_contacts(path: Path, *, limits: ContactsSettings | None = None) -> ReadResult:
    """Read a ``.csv`` (UTF-8, with or without BOM, "," or ";") or ``.xlsx`` (first sheet) contacts file,
    within ``limits`` (the ``[contacts]`` settings; their defaults when None)."""
    path = Path(path)
    limits = limits or ContactsSettings()
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read(path, _csv_rows(path, limits), limits)
    if suffix == ".xlsx":
        return _read(path, _xlsx_rows(path, limits), limits)
    hint = " (old Excel format)" if suffix == ".xls" else ""
    raise ContactsFileError(
        path,
        f'unsupported file type "{suffix or path.name}"{hint}',
        fix=f"Save it as one of {', '.join(_SUPPORTED)} (CSV in UTF-8) and import again.",
    )
