"""The row-level report of an import: counts, and the merges, problems and rows without a segment.

A city-wide file can have hundreds of thousands of them: with a ``details`` path the report keeps the first
``KEPT`` of each list (what the CLI shows and the stored report holds) and, when a list is longer, every entry
goes to a CSV file at that path, named in the report; without it, every one stays in the report (uploads
through the web, bounded by ``[contacts]``)."""

from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from broadcaster.contacts.records import RowProblem
from broadcaster.i18n import translate

__all__ = ["KEPT", "ImportReport", "Merge", "RowLog", "RowReportError"]

KEPT: Final = 1000  # entries of each list kept in the report when the full lists go to a file
DETAILS_COLUMNS: Final = ("row", "kind", "column", "value", "severity", "reason", "contact_id", "matched_by")


@dataclass(frozen=True)
class Merge:
    row: int
    contact_id: int
    matched_by: str  # external_id | name+phone | name+email | earlier row


@dataclass
class ImportReport:
    file: str
    total_rows: int
    created: int = 0
    updated: int = 0
    skipped: int = 0
    merges: list[Merge] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    without_segment: list[int] = field(default_factory=list)  # rows whose contact no campaign can reach
    import_id: int | None = None
    # How many there are of each list (the lists may hold only the first KEPT: see details_file).
    merge_count: int = 0
    problem_count: int = 0
    without_segment_count: int = 0
    details_file: str | None = None  # the CSV with every merge, problem and row without a segment

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "import_id": self.import_id,
            "total_rows": self.total_rows,
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "merges": [asdict(m) for m in self.merges],
            "problems": [asdict(p) for p in self.problems],
            "without_segment": self.without_segment,
            "merge_count": self.merge_count,
            "problem_count": self.problem_count,
            "without_segment_count": self.without_segment_count,
            "details_file": self.details_file,
        }


class RowReportError(Exception):
    """The row report's file cannot be written where it was asked for."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class RowLog:
    """Collects the entries of ``report`` as the import meets them, in row order. With a ``details`` path, the
    file is started once a list outgrows ``KEPT`` (a temporary name until ``finish``), so a short report
    writes no file."""

    def __init__(self, report: ImportReport, details: Path | None) -> None:
        self._report = report
        self._details = details
        self._keep = KEPT if details is not None else None
        self._waiting: list[tuple[Any, ...]] = []  # the file's rows until it is started
        self._file: IO[str] | None = None
        self._writer: Any = None

    def _kept(self, count: int) -> bool:
        return self._keep is None or count <= self._keep

    def _write(self, row: tuple[Any, ...], count: int) -> None:
        if self._details is None:
            return
        if self._writer is not None:
            self._writer.writerow(row)
            return
        self._waiting.append(row)
        if not self._kept(count):
            try:
                self._file = tempfile.NamedTemporaryFile(  # noqa: SIM115  # closed by finish or discard
                    "w",
                    encoding="utf-8-sig",
                    newline="",
                    dir=self._details.parent,
                    prefix=self._details.name + ".",
                    suffix=".partial",
                    delete=False,
                )
            except OSError as exc:
                raise RowReportError(self._details, exc.strerror or str(exc)) from exc
            self._writer = csv.writer(self._file)
            self._writer.writerow(DETAILS_COLUMNS)
            self._writer.writerows(self._waiting)
            self._waiting = []

    def problem(self, problem: RowProblem) -> None:
        report = self._report
        report.problem_count += 1
        if self._kept(report.problem_count):
            report.problems.append(problem)
        if self._details is not None:
            reason = translate(problem.reason)
            row = (problem.row, "problem", problem.column, problem.value, problem.severity, reason, "", "")
            self._write(row, report.problem_count)

    def merge(self, merge: Merge) -> None:
        report = self._report
        report.merge_count += 1
        if self._kept(report.merge_count):
            report.merges.append(merge)
        row = (merge.row, "merge", "", "", "", "", merge.contact_id, merge.matched_by)
        self._write(row, report.merge_count)

    def without_segment(self, row: int) -> None:
        report = self._report
        report.without_segment_count += 1
        if self._kept(report.without_segment_count):
            report.without_segment.append(row)
        self._write((row, "without_segment", "segment", "", "", "", "", ""), report.without_segment_count)

    def finish(self) -> None:
        """Put the started file in its place and name it in the report."""
        if self._file is None or self._details is None:
            return
        self._file.close()
        os.replace(self._file.name, self._details)
        self._report.details_file = str(self._details)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            Path(self._file.name).unlink(missing_ok=True)
