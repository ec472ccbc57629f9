"""The report's formats: each name maps to the module and function that writes a ``Report`` to a file.

Writers are imported only when asked for, so that ``--format csv`` never loads python-docx or matplotlib.
A writer takes ``(report, path)`` and writes the whole file or nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import cast

from broadcaster.reporting.model import Report

__all__ = ["WRITERS", "Writer", "writer_for"]

Writer = Callable[[Report, Path], None]

# format → "module:function"; the DOCX and XLSX writers add themselves here.
WRITERS: dict[str, str] = {
    "csv": "broadcaster.reporting.csv_writer:write_csv",
}


def writer_for(name: str) -> Writer:
    """The writer of ``name`` (one of ``WRITERS``), imported now."""
    module, _, function = WRITERS[name].partition(":")
    return cast(Writer, getattr(importlib.import_module(module), function))
