"""Read a list of addresses (the do-not-call register, a campaign's exclusion list) and check all of it.

The file is plain text with one phone number or e-mail per line, or a CSV whose header has a ``phone`` and/or
an ``email`` column, named as in a contacts file ("SĐT", "Thư điện tử"…; other columns are ignored). Blank
lines and lines starting with ``#`` are skipped. It is read as a contacts CSV is (UTF-8 with or without BOM,
"," or ";", the ``[contacts]`` size limit) and every value is normalised as contacts import normalises it. The
whole file is checked before anything is stored: one bad value refuses the file, with its line and value
(docs/architecture.md §4, "Suppression").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from broadcaster.contacts.cell_text import control_problem, visible
from broadcaster.contacts.emails import EmailError, normalize_email
from broadcaster.contacts.header import field_of
from broadcaster.contacts.phones import PhoneError, parse_phone
from broadcaster.contacts.records import ContactsFileError
from broadcaster.contacts.sources import csv_rows
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.i18n import translate
from broadcaster.settings_sections import ContactsSettings

__all__ = ["AddressList", "AddressListError", "read_address_list"]

Kind = Literal["phone", "email"]
CHANNEL_OF: Final[dict[Kind, str]] = {"phone": "sms", "email": "email"}
_KINDS: Final[dict[str | None, Kind]] = {"phone": "phone", "email": "email"}  # contacts fields → kinds
_SHOWN_PROBLEMS: Final = 20  # lines named in the error; the count says how many more


class AddressListError(UserError):
    """The file cannot be used; nothing was stored. The message names the file, the lines and the values."""


@dataclass
class AddressList:
    path: Path
    sha256: str
    # (channel, normalised address) in file order, each once: sms → E.164, email → normalised e-mail.
    addresses: list[tuple[str, str]] = field(default_factory=list)

    def of(self, channel: str) -> list[str]:
        return [address for address_channel, address in self.addresses if address_channel == channel]


def read_address_list(path: Path, *, kinds: frozenset[Kind], limits: ContactsSettings) -> AddressList:
    """Every address of ``path``, normalised; AddressListError naming each bad line (or the file's problem).

    ``kinds`` says what the list may hold (the do-not-call register: phones only)."""
    try:
        rows = list(csv_rows(path, limits))
        data = path.read_bytes()
    except ContactsFileError as exc:
        raise AddressListError(str(exc)) from None
    except OSError as exc:
        raise AddressListError(
            _("%(path)s: cannot be read (%(reason)s)") % {"path": path, "reason": exc.strerror}
        ) from None
    result = AddressList(path=path, sha256=hashlib.sha256(data).hexdigest())
    content = [(line, cells) for line, cells in rows if not _skipped(cells)]
    columns = _header(content[0][1]) if content else None
    if columns is not None:
        content = content[1:]
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for line, cells in content:
        for kind, raw in _values(cells, columns):
            try:
                entry = _normalised(raw, kind, kinds)
            except ValueError as exc:
                problems.append(f"{path}:{line}: {visible(raw)!r} {exc}")
                continue
            if entry not in seen:
                seen.add(entry)
                result.addresses.append(entry)
    if problems:
        more = len(problems) - _SHOWN_PROBLEMS
        shown = "\n".join(problems[:_SHOWN_PROBLEMS]) + (
            "\n" + _("… and %(more)s more") % {"more": more} if more > 0 else ""
        )
        raise AddressListError(
            _("%(count)s bad value(s); nothing was imported. Fix these lines and import again:")
            % {"count": len(problems)}
            + "\n"
            + shown
        )
    if not result.addresses:
        wanted = _(" or ").join(sorted(kinds))
        raise AddressListError(
            _("%(path)s: holds no %(wanted)s; nothing was imported") % {"path": path, "wanted": wanted}
        )
    return result


def _skipped(cells: list[str]) -> bool:
    first = cells[0].strip() if cells else ""
    return first.startswith("#") or not any(cell.strip() for cell in cells)


def _header(cells: list[str]) -> dict[int, Kind] | None:
    """Column index → kind when the first line names a phone or email column; None for a plain list."""
    named = {i: _KINDS[name] for i, name in enumerate(map(field_of, cells)) if name in _KINDS}
    return named or None


def _values(cells: list[str], columns: dict[int, Kind] | None) -> list[tuple[Kind, str]]:
    if columns is None:  # a plain list: the whole line is the value (a "," may be part of how it is typed)
        raw = ",".join(cells).strip()
        return [("email" if "@" in raw else "phone", raw)]
    return [(kind, cells[i].strip()) for i, kind in columns.items() if i < len(cells) and cells[i].strip()]


def _normalised(raw: str, kind: Kind, kinds: frozenset[Kind]) -> tuple[str, str]:
    """(channel, address); ValueError saying why the value is refused."""
    problem = control_problem(raw)
    if problem is not None:
        raise ValueError(_("holds a %(problem)s") % {"problem": translate(problem)})
    if kind not in kinds:
        raise ValueError(
            _("is not a %(kinds)s, the only kind of address this list holds")
            % {"kinds": _(" or ").join(sorted(kinds))}
        )
    try:
        if kind == "email":
            return "email", normalize_email(raw)
        return "sms", parse_phone(raw).e164
    except (EmailError, PhoneError) as exc:
        raise ValueError(
            (
                _("is not a valid e-mail address (%(reason)s)")
                if kind == "email"
                else _("is not a valid phone number (%(reason)s)")
            )
            % {"reason": translate(exc.reason)}
        ) from None
