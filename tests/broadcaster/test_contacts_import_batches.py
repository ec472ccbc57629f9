"""Importing a file a batch of rows at a time (broadcaster/contacts/importer.py): rows merge across batches as
within one, the row report is the one a single pass gives, a problem with the file met late imports nothing
(SQLite and PostgreSQL), and a long row report goes to a file."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from broadcaster.clock import FrozenClock
from broadcaster.contacts import importer, row_report
from broadcaster.contacts.importer import ContactsImportError, ImportReport, import_contacts
from broadcaster.contacts.matching import apply_row, new_contact
from broadcaster.contacts.reader import DataRecords, read_contacts
from broadcaster.context import AppContext
from broadcaster.db.models import Contact
from broadcaster.settings_sections import ContactsSettings
from tests.broadcaster.conftest import ADMIN_LOGIN, FIXTURES, database_dump
from tests.broadcaster.test_cli import Cli, one_line

HEADER = "external_id,full_name,phone,email,segment,district,tags\n"


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two rows per batch, so that a handful of rows spans several batches."""
    monkeypatch.setattr(importer, "BATCH_ROWS", 2)


def _write(directory: Path, name: str, rows: list[str], header: str = HEADER) -> Path:
    path = directory / name
    path.write_bytes((header + "".join(f"{row}\n" for row in rows)).encode("utf-8"))
    return path


def _import(context: AppContext, path: Path, **options: object) -> ImportReport:
    with context.sessions.begin() as session:
        return import_contacts(session, path=path, actor=ADMIN_LOGIN, clock=context.clock, **options)  # type: ignore[arg-type]


def _stored(context: AppContext) -> dict[str, Contact]:
    with context.sessions() as session:
        return {c.full_name: c for c in session.scalars(select(Contact).order_by(Contact.id))}


def test_a_row_merges_with_an_earlier_row_of_another_batch(
    database: AppContext, tmp_path: Path, small_batches: None
) -> None:
    context = database
    path = _write(
        tmp_path,
        "lo.csv",
        [
            ",Phan Văn Hùng,0912 111 222,,citizen,,a",  # row 2, batch 1
            ",Lê Thị Lan,0905 000 001,,citizen,,",
            ",Ngô Văn Tài,0905 000 002,,citizen,,",  # batch 2
            ",PHAN VĂN HÙNG,+84912111222,,citizen,,b",  # row 5: the person of row 2
            ",Trương Thị Hạnh,,hanh@danang.gov.vn,,,",  # batch 3, no segment yet
            "DN-1,Võ Minh,0905 000 003,,citizen,,",  # row 7
            ",trương thị hạnh,,HANH@DaNang.gov.vn,civil_servant,,",  # row 8: the person of row 6
            "DN-1,Võ Minh Khác,0905 000 004,,citizen,,",  # row 9: row 7's id again
        ],
    )
    report = _import(context, path)
    stored = _stored(context)
    hung, hanh = stored["PHAN VĂN HÙNG"], stored["trương thị hạnh"]
    assert (report.created, report.updated, report.skipped) == (5, 0, 1)
    assert [(m.row, m.contact_id, m.matched_by) for m in report.merges] == [
        (5, hung.id, "earlier row (name+phone)"),
        (8, hanh.id, "earlier row (name+email)"),
    ]
    assert [(p.row, p.column, str(p.reason)) for p in report.problems] == [
        (9, "external_id", "duplicate external_id (first used on row 7)")
    ]
    assert report.without_segment == [6]  # as it was when row 6 was read
    assert (hung.tags, hanh.segment, hanh.email) == (["a", "b"], "civil_servant", "HANH@danang.gov.vn")
    assert len(stored) == 5


def test_batches_give_the_report_of_one_pass(database: AppContext, small_batches: None) -> None:
    context = database
    path = FIXTURES / "danh-ba.csv"
    first = _import(context, path)
    assert (first.total_rows, first.created, first.updated, first.skipped) == (15, 11, 0, 4)
    assert first.problems == read_contacts(path).problems  # every one, in file order
    assert first.problem_count == len(first.problems)
    again = _import(context, path)
    assert (again.created, again.updated, again.skipped, len(again.merges)) == (0, 11, 4, 11)
    assert {m.matched_by for m in again.merges} == {"external_id", "name+phone"}


def test_a_new_contact_is_a_row_applied_to_an_empty_contact(clock: FrozenClock) -> None:
    now = clock.now()
    for row in read_contacts(FIXTURES / "danh-ba.csv").rows:
        empty: dict[str, Any] = {name: None for name in new_contact(row, now=now, import_id=7)}
        empty.update(tags=[], attributes={}, created_at=now, updated_at=now, import_id=7)
        apply_row(empty, row)
        assert new_contact(row, now=now, import_id=7) == empty


def test_reading_reports_rows_and_bytes(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.csv", [f",Người {n},0905 000 {n:03d},,citizen,," for n in range(10)])
    records = DataRecords(path)
    assert len(list(records)) == 10
    assert (records.progress.rows, records.progress.bytes_read) == (10, path.stat().st_size)
    assert records.progress.total_bytes == path.stat().st_size


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def database(
    request: pytest.FixtureRequest, context: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppContext]:
    """The test's context (SQLite), or one on a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield context
        return
    url = request.getfixturevalue("postgres_url")
    monkeypatch.chdir(tmp_path)
    Cli(monkeypatch)("init", "pg", "--admin", ADMIN_LOGIN, "--database-url", url)
    made = AppContext.load(tmp_path / "pg" / "broadcaster.toml", clock=context.clock)
    yield made
    made.close()


LATE_ERRORS = [
    # A cell past the csv module's field limit on the last line: the reader fails there.
    pytest.param(b",Cuoi Cung,0905 999 999,,citizen,," + b"x" * 200_000 + b"\n", 0, "broken CSV", id="csv"),
    pytest.param(b",H\xe0 L\xe2m,0905 999 999,,citizen,,\n", 0, "not UTF-8", id="not-utf8"),
    pytest.param(b",Du Mot Dong,0905 999 999,,citizen,,\n", 8, "more than 8 rows", id="max-rows"),
]


@pytest.mark.parametrize(("last_line", "max_rows", "message"), LATE_ERRORS)
def test_a_file_level_error_late_in_the_file_imports_nothing(
    database: AppContext, tmp_path: Path, small_batches: None, last_line: bytes, max_rows: int, message: str
) -> None:
    rows = [f",Người Số {n},0905 000 {n:03d},,citizen,," for n in range(8)]
    path = _write(tmp_path, "tre.csv", rows)
    path.write_bytes(path.read_bytes() + last_line)
    limits = ContactsSettings(max_rows=max_rows) if max_rows else None
    before = database_dump(database.engine)
    with pytest.raises(ContactsImportError, match=message) as refused:
        _import(database, path, limits=limits, details_dir=tmp_path)
    assert "Nothing was imported" in str(refused.value)
    assert database_dump(database.engine) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["tre.csv"]  # no row report left
    # The same rows without the bad line import in full: the error, not the batches, stopped the first.
    path.write_bytes(path.read_bytes().removesuffix(last_line))
    assert _import(database, path).created == 8


def _problem_rows(count: int) -> list[str]:
    """Rows with a landline (a warning each), for a long list of problems."""
    return [f",Cơ Quan {n},0236 3822 {n:03d},,agency,," for n in range(count)]


def test_a_long_row_report_goes_to_a_file(
    context: AppContext, tmp_path: Path, small_batches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(row_report, "KEPT", 3)
    path = _write(tmp_path, "co-quan.csv", [*_problem_rows(5), ",Cơ Quan 0,0236 3822 000,,agency,,"])
    report = _import(context, path, details_dir=tmp_path)
    assert (report.problem_count, len(report.problems)) == (6, 3)
    assert (report.merge_count, len(report.merges)) == (1, 1)
    assert report.details_file == str(tmp_path / f"co-quan.import-{report.import_id}.csv")
    with Path(report.details_file).open(encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert [(line["row"], line["kind"], line["column"], line["severity"]) for line in lines] == [
        *((str(row), "problem", "phone", "warning") for row in range(2, 8)),
        ("7", "merge", "", ""),  # row 7 is the person of row 2
    ]
    assert lines[0]["reason"] == "landline: cannot receive SMS"
    assert lines[-1]["contact_id"] == str(report.merges[0].contact_id)
    stored = report.as_dict()
    assert (stored["problem_count"], len(stored["problems"]), stored["details_file"]) == (
        6,
        3,
        report.details_file,
    )


def test_a_short_row_report_writes_no_file(context: AppContext, tmp_path: Path) -> None:
    path = _write(tmp_path, "ngan.csv", _problem_rows(3))
    report = _import(context, path, details_dir=tmp_path)
    assert (report.problem_count, len(report.problems), report.details_file) == (3, 3, None)
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["ngan.csv"]


def test_the_cli_names_the_row_report(workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(row_report, "KEPT", 2)
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("COLUMNS", "200")
    path = _write(tmp_path, "co-quan.csv", _problem_rows(4))
    said = one_line(Cli(monkeypatch)("contacts", "import", str(path), "--show", "1").stdout)
    details = tmp_path / "co-quan.import-1.csv"
    assert details.exists()
    assert f"Row report (every merge, problem and row without a segment): {details}" in said
    assert "… 3 more in the row report." in said
