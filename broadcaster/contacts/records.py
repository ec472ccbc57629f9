"""What reading a contacts file gives: checked rows, row problems, the result, and the error for a whole file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from broadcaster.contacts.phones import Phone

__all__ = ["ContactRow", "ContactsFileError", "ReadProgress", "ReadResult", "RowProblem", "Severity"]

Severity = Literal["error", "warning"]


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


@dataclass(slots=True)
class ReadProgress:
    """How far the reading of a file is, updated as it streams (read by a progress display)."""

    rows: int = 0  # data rows read so far, empty ones not counted
    bytes_read: int = 0
    total_bytes: int | None = None  # the file's size, when the bytes read tell how far the rows are


class ContactsFileError(Exception):
    """The file as a whole cannot be imported; the message names the file and says what to do."""

    def __init__(self, path: Path, problem: str, *, fix: str) -> None:
        super().__init__(f"{path}: {problem}. {fix}")
        self.path = path
        self.problem = problem
        self.fix = fix
