"""Text of one cell as people type it: spaces squeezed, diacritics set aside, control characters caught."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from broadcaster.i18n import N_, Translatable

__all__ = ["WHITESPACE", "control_problem", "strip_diacritics", "visible"]

WHITESPACE: Final = re.compile(r"\s+")
# Control characters (Unicode category Cc: NUL, ESC, DEL, C1…) are invisible in a spreadsheet and break
# messages and exports; tab and line breaks are ordinary in a cell (Alt+Enter in Excel).
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def strip_diacritics(text: str) -> str:
    # NFD splits "ễ" into "e" + combining marks; "đ" does not decompose and is mapped by hand (docs/domain.md §2).
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return bare.replace("đ", "d").replace("Đ", "D")


def visible(value: str) -> str:
    """``value`` with its control characters spelled out (``\\x00``), fit for a report or a JSON column."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", value)


def control_problem(value: str) -> str | None:
    """Why ``value`` is refused, or None: it holds a control character."""
    found = _CONTROL.search(value)
    if found is None:
        return None
    return Translatable(
        N_("control character %(code)s (invisible in a spreadsheet)"), code=f"U+{ord(found.group()):04X}"
    )
