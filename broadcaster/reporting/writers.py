"""The report's formats: each name maps to the module and function that writes a ``Report`` to a file.

Writers are imported only when asked for, so that ``--format csv`` never loads python-docx or matplotlib.
A writer takes ``(report, out)`` and writes the whole document to the binary stream ``out``; the command gives
it a temporary file and renames it when the writer returns, so a failure never leaves half a report.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import BinaryIO, cast

from broadcaster.reporting.model import Report

__all__ = ["WRITERS", "Writer", "writer_for"]

Writer = Callable[[Report, BinaryIO], None]

# format → "module:function".
WRITERS: dict[str, str] = {
    "csv": "broadcaster.reporting.csv_writer:write",
    "docx": "broadcaster.reporting.docx_writer:write",
    "xlsx": "broadcaster.reporting.xlsx_writer:write",
}


def writer_for(name: str) -> Writer:
    """The writer of ``name`` (one of ``WRITERS``), imported now."""
    module, _, function = WRITERS[name].partition(":")
    return cast(Writer, getattr(importlib.import_module(module), function))
