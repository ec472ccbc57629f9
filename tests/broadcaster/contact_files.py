"""Small contacts files written for a test: text in a given encoding, or an XLSX sheet of rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import openpyxl


def write_text(tmp_path: Path, name: str, text: str, *, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(tmp_path: Path, rows: Sequence[Sequence[object]], name: str = "danh-ba.xlsx") -> Path:
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()
    for row in rows:
        sheet.append(row)
    path = tmp_path / name
    workbook.save(path)
    return path
