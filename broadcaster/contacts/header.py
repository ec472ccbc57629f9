"""The header row of a contacts file: which column holds which field, by English or Vietnamese name.

Matching ignores case, surrounding/duplicate spaces and Vietnamese diacritics, so "SĐT", "sdt" and "Sdt" all
match; any other column becomes an attribute.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from broadcaster.contacts.cell_text import WHITESPACE, control_problem, strip_diacritics, visible
from broadcaster.contacts.records import ContactsFileError
from broadcaster.i18n import gettext as _
from broadcaster.i18n import translate

__all__ = ["FIELDS", "HEADER_ALIASES", "Columns", "field_of", "map_header"]

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
HEADER_ALIASES: Final[dict[str, tuple[str, ...]]] = {
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


def _header_key(header: str) -> str:
    text = WHITESPACE.sub(" ", unicodedata.normalize("NFC", header)).strip().casefold()
    return strip_diacritics(text).replace("_", " ")


_HEADER_FIELDS: Final[dict[str, str]] = {
    _header_key(name): field_name
    for field_name, aliases in HEADER_ALIASES.items()
    for name in (field_name, *aliases)
}


def field_of(header: str) -> str | None:
    """The field a column header names, by any of its names (case, spaces and diacritics ignored), or None."""
    return _HEADER_FIELDS.get(_header_key(header))


@dataclass(slots=True)
class Columns:
    fields: dict[str, int] = field(default_factory=dict)  # field → column index
    extras: dict[str, int] = field(default_factory=dict)  # header as written → column index


def map_header(path: Path, header: Sequence[str]) -> Columns:
    columns = Columns()
    seen: dict[str, str] = {}  # header key → header as written, to report duplicates by their spelling
    for index, cell in enumerate(header):
        written = unicodedata.normalize("NFC", cell).strip()
        if not written:
            continue  # spreadsheets often carry blank trailing header cells
        control = control_problem(written)
        if control is not None:
            raise ContactsFileError(
                path,
                _('header column %(index)s "%(name)s" holds a %(problem)s')
                % {"index": index + 1, "name": visible(written), "problem": translate(control)},
                fix=_("Retype that column name in the first row and import again."),
            )
        key = _header_key(written)
        target = _HEADER_FIELDS.get(key, key)
        if target in seen:
            raise ContactsFileError(
                path,
                _('columns "%(first)s" and "%(second)s" are duplicates (both mean "%(field)s")')
                % {"first": seen[target], "second": written, "field": target},
                fix=_("Keep one of them in the header row and import again."),
            )
        seen[target] = written
        if target in FIELDS:
            columns.fields[target] = index
        else:
            columns.extras[written] = index
    if "full_name" not in columns.fields:
        raise ContactsFileError(
            path,
            _('missing the name column (header "full_name" or "Họ và tên")'),
            fix=_("Add that column to the first row and import again."),
        )
    if "phone" not in columns.fields and "email" not in columns.fields:
        raise ContactsFileError(
            path,
            _('missing a phone or an e-mail column (header "phone"/"Số điện thoại" or "email")'),
            fix=_("Add at least one of them to the first row and import again."),
        )
    return columns
