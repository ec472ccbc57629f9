"""Import a contacts file into the database: merge, report every row, and import nothing on a fatal error.

Merging: a row with an ``external_id`` updates the contact with that id; otherwise a contact with the same
name and the same phone (or the same e-mail) is the same person. Every merge is reported, so the officer
can see which rows touched existing people. Opt-out flags are never reset by an import.

Campaigns choose their audience by segment, so a contact left without one is reached by no campaign: the
report lists those rows (``without_segment``) for the officer to fill in.

The file is streamed and merged a batch of rows at a time (``matching``), so memory stays the same whatever
its size; everything happens under a savepoint, so a problem with the file met late (a broken line, one row
too many) leaves the database as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Final, TypeVar, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.clock import Clock
from broadcaster.contacts.import_ids import ImportIds
from broadcaster.contacts.matching import COLUMNS, BatchIndex, StoredContact, apply_row, new_contact, unique
from broadcaster.contacts.reader import ContactRow, ContactsFileError, DataRecords, ReadProgress, RowProblem
from broadcaster.contacts.row_builder import RowBuilder
from broadcaster.contacts.row_report import ImportReport, Merge, RowLog, RowReportError
from broadcaster.db.bulk import insert_whole_rows, reserve_ids, update_by_id
from broadcaster.db.models import Contact, ContactImport
from broadcaster.errors import UserError
from broadcaster.gc_pace import fewer_collections
from broadcaster.i18n import gettext as _
from broadcaster.settings_sections import ContactsSettings

__all__ = ["ContactsImportError", "ImportReport", "Merge", "import_contacts"]

BATCH_ROWS: Final = 2000  # rows read, matched and written together
_SQLITE_CACHE_KIB: Final = 64 * 1024
_TABLE: Final = cast(Table, Contact.__table__)
_UPDATED: Final = tuple(name for name in COLUMNS if name not in ("id", "created_at", "import_id"))

T = TypeVar("T")


class ContactsImportError(UserError):
    """The whole file was refused; nothing was imported."""


def import_contacts(
    session: Session,
    *,
    path: Path,
    actor: str,
    clock: Clock,
    limits: ContactsSettings | None = None,
    details_dir: Path | None = None,
    on_batch: Callable[[ReadProgress], None] | None = None,
) -> ImportReport:
    """Read, validate and merge ``path`` inside the caller's transaction, within ``limits`` (the ``[contacts]``
    settings; their defaults when None). With ``details_dir`` the report keeps the first entries of its lists
    and a CSV there has them all (``row_report``); ``on_batch`` is called as the reading goes on."""
    path = Path(path)
    try:
        records = DataRecords(path, limits=limits)
        with session.begin_nested(), _page_cache(session), fewer_collections():
            return _import(
                session, records, actor=actor, clock=clock, details_dir=details_dir, on_batch=on_batch
            )
    except ContactsFileError as exc:
        raise ContactsImportError(str(exc) + " " + _("Nothing was imported.")) from None
    except RowReportError as exc:
        raise ContactsImportError(
            _("%(path)s: cannot write the row report there (%(reason)s). Nothing was imported.")
            % {"path": exc.path, "reason": exc.reason}
        ) from None
    except OSError as exc:
        raise ContactsImportError(
            _("%(path)s: cannot read the file (%(reason)s). Nothing was imported.")
            % {"path": path, "reason": exc.strerror}
        ) from None


def _import(
    session: Session,
    records: DataRecords,
    *,
    actor: str,
    clock: Clock,
    details_dir: Path | None,
    on_batch: Callable[[ReadProgress], None] | None,
) -> ImportReport:
    path, now = records.path, clock.now()
    batch = ContactImport(
        filename=path.name,
        sha256="",  # once the file has been read through
        imported_by=actor,
        imported_at=now,
        rows_total=0,
        created=0,
        updated=0,
        skipped=0,
        report={},
    )
    session.add(batch)
    session.flush()
    report = ImportReport(file=str(path), total_rows=0, import_id=batch.id)
    details = details_dir / f"{path.stem}.import-{batch.id}.csv" if details_dir is not None else None
    log = RowLog(report, details)
    try:
        merger = _Merger(session, report, log, now=now, import_id=batch.id)
        for chunk in _chunks(records, BATCH_ROWS):
            if merger.builder is None:
                assert records.columns is not None  # known once a record is out
                merger.builder = RowBuilder(records.columns)
            merger.merge(chunk)
            if on_batch is not None:
                on_batch(records.progress)
        merger.ids.drop()
        report.total_rows = records.progress.rows
        batch.sha256 = _sha256(path)
        batch.rows_total = report.total_rows
        batch.created, batch.updated, batch.skipped = report.created, report.updated, report.skipped
        log.finish()
    except BaseException:
        log.discard()
        raise
    batch.report = report.as_dict()
    audit.record(
        session,
        actor=actor,
        action="contacts.import",
        subject_type="contact_import",
        subject_id=batch.id,
        at=now,
        details={
            "file": path.name,
            "sha256": batch.sha256,
            "created": report.created,
            "updated": report.updated,
            "skipped": report.skipped,
            "problems": report.problem_count,
            "without_segment": report.without_segment_count,
        },
    )
    return report


class _Merger:
    """Builds, matches and stores one batch of records after another."""

    def __init__(self, session: Session, report: ImportReport, log: RowLog, *, now: datetime, import_id: int):
        self.session, self.report, self.log = session, report, log
        self.now, self.import_id = now, import_id
        self.ids = ImportIds(session)
        self.builder: RowBuilder | None = None

    def merge(self, chunk: Sequence[tuple[int, list[str]]]) -> None:
        built = self._build(chunk)
        rows = [row for row, _problems in built if row is not None]
        index = BatchIndex(self.session, rows)
        # Per row: its contact, the merge it makes ("" for a new contact), and whether it has no segment then.
        outcome: dict[int, tuple[StoredContact, str, bool]] = {}
        new: list[StoredContact] = []
        stored: list[StoredContact] = []
        for row in rows:
            contact, matched_by = index.match(row)
            if contact is None:
                contact = new_contact(row, now=self.now, import_id=self.import_id)
                new.append(contact)
                matched_by = ""
                self.report.created += 1
            else:
                apply_row(contact, row)
                contact["updated_at"] = self.now
                if contact["import_id"] == self.import_id:  # made by this file: an earlier row
                    matched_by = f"earlier row ({matched_by})"
                else:
                    self.report.updated += 1
                if "id" in contact:
                    stored.append(contact)
            outcome[row.row] = (contact, matched_by, not contact["segment"])
            index.add(contact)
        self._store(new, unique(stored))
        for kept, problems in built:  # the report in row order, now that every contact has its id
            for problem in problems:
                self.log.problem(problem)
            if kept is None:
                self.report.skipped += 1
                continue
            contact, matched_by, no_segment = outcome[kept.row]
            if matched_by:
                self.log.merge(Merge(row=kept.row, contact_id=contact["id"], matched_by=matched_by))
            if no_segment:
                self.log.without_segment(kept.row)

    def _build(
        self, chunk: Sequence[tuple[int, list[str]]]
    ) -> list[tuple[ContactRow | None, list[RowProblem]]]:
        builder = self.builder
        assert builder is not None
        unchecked = [builder.build_unchecked(number, record) for number, record in chunk]
        before = self.ids.first_rows({b.external_id for b in unchecked if b.external_id is not None})
        first_row_of_id = dict(before)
        built = [builder.check_duplicate(b, first_row_of_id) for b in unchecked]
        self.ids.add({key: row for key, row in first_row_of_id.items() if key not in before})
        return built

    def _store(self, new: list[StoredContact], stored: list[StoredContact]) -> None:
        for contact, contact_id in zip(new, reserve_ids(self.session, _TABLE, len(new)), strict=True):
            contact["id"] = contact_id
        insert_whole_rows(self.session, _TABLE, new)
        update_by_id(
            self.session,
            _TABLE,
            [{"b_id": c["id"]} | {f"v_{name}": c[name] for name in _UPDATED} for c in stored],
            from_row={name: f"v_{name}" for name in _UPDATED},
        )


@contextlib.contextmanager
def _page_cache(session: Session) -> Iterator[None]:
    """SQLite: a page cache of ``_SQLITE_CACHE_KIB`` for the import's connection, then the one it had. The
    contacts' six indexes take keys in random order; with SQLite's default 2 MiB most inserts miss the cache.
    A bound, so memory stays flat whatever the file."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(before or 0)}")


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _sha256(path: Path) -> str:
    with path.open("rb") as data:
        return hashlib.file_digest(data, "sha256").hexdigest()
