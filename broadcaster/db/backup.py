"""An online copy of the SQLite database while the engine runs (``broadcaster backup``).

SQLite's online backup API copies the pages of one read transaction: the copy is the database as it was at one
moment, whatever the workers write meanwhile (in WAL mode they are not held up; docs/deployment.md, "Backups").
The copy is written next to the target under a temporary name, checked with ``PRAGMA integrity_check`` and only
then renamed into place, so a target that exists is always a whole, sound database.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from broadcaster.db.engine import SQLITE_BUSY_TIMEOUT_MS, is_sqlite
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _


@dataclass(frozen=True)
class BackupResult:
    target: Path
    size: int  # bytes
    tables: int


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise UserError(_("[database] url %(url)s names no database file to back up") % {"url": url})
    return Path(database)


def backup_sqlite(url: str, target: Path, *, overwrite: bool = False) -> BackupResult:
    """Copy the SQLite database of ``url`` to ``target`` in one consistent snapshot and check the copy."""
    if not is_sqlite(url):
        raise UserError(postgresql_procedure())
    source = sqlite_path(url)
    if not source.is_file():
        raise UserError(_("the database file %(path)s does not exist ([database] url)") % {"path": source})
    target = target.resolve()
    if target == source.resolve():
        raise UserError(
            _("the backup file must not be the database file itself (%(path)s)") % {"path": target}
        )
    if target.exists() and not overwrite:
        raise UserError(_("%(path)s exists already; choose another file or pass --force") % {"path": target})
    if not target.parent.is_dir():
        raise UserError(_("the folder %(path)s does not exist") % {"path": target.parent})
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    try:
        with (
            contextlib.closing(sqlite3.connect(source, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)) as live,
            contextlib.closing(sqlite3.connect(partial)) as copy,
        ):
            live.backup(copy)  # all pages in one step: one read snapshot, never restarted by a writer
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
            problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
            tables = copy.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if problems != ["ok"]:
            raise UserError(
                _("the copy failed its integrity check: %(problems)s") % {"problems": "; ".join(problems[:5])}
            )
        partial.replace(target)
    except sqlite3.Error as exc:
        raise UserError(
            _("could not back up %(source)s to %(target)s: %(error)s")
            % {"source": source, "target": target, "error": exc}
        ) from None
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(target=target, size=target.stat().st_size, tables=int(tables))


def postgresql_procedure() -> str:
    """What to do instead on PostgreSQL (the CLI refuses and says this)."""
    return _(
        "broadcaster backup copies SQLite databases only. On PostgreSQL use its own tools while the engine "
        "runs: pg_dump --format=custom --file=broadcaster.dump DATABASE_URL (a consistent snapshot), and "
        "pg_restore --dbname=NEW_DATABASE_URL broadcaster.dump to restore; see docs/deployment.md, Backups"
    )
