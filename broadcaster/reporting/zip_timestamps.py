"""Office files (DOCX, XLSX) written byte-for-byte the same for the same report.

python-docx and openpyxl stamp every ZIP member with the wall-clock time of writing; rewriting the archive
with the report's own time (same members, same order, same compression) makes two renderings of one report
comparable with ``cmp``.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from datetime import datetime

__all__ = ["with_fixed_timestamps"]

# ZIP stores local times from 1980 on, without a zone.
_ZIP_EPOCH = datetime(1980, 1, 1)  # noqa: DTZ001 - a ZIP date has no time zone


def with_fixed_timestamps(
    archive: bytes, when: datetime, replace: Mapping[str, bytes] | None = None
) -> bytes:
    """``archive`` with every member dated ``when`` (naive, as ZIP stores it; clamped to 1980), and the members
    named in ``replace`` given those contents instead."""
    replace = replace or {}
    stamp = max(when.replace(tzinfo=None), _ZIP_EPOCH).timetuple()[:6]
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(out, "w") as target:
        for member in source.infolist():
            info = zipfile.ZipInfo(member.filename, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            target.writestr(info, replace.get(member.filename) or source.read(member.filename))
    return out.getvalue()
