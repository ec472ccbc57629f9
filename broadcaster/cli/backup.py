"""``broadcaster backup FILE``: an online copy of the SQLite database, consistent while the engine runs (admins
only; the copy holds every person's data). On PostgreSQL it refuses and says how to use pg_dump instead."""

from __future__ import annotations

from pathlib import Path

import typer

from broadcaster import audit
from broadcaster.cli.common import acting, check_role, console, state
from broadcaster.db.backup import backup_sqlite, postgresql_procedure
from broadcaster.db.engine import is_sqlite, make_engine
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.settings import load_settings


def backup(
    target: Path = typer.Argument(..., help="The file to write the copy to (not inside a synced folder)."),
    force: bool = typer.Option(False, "--force", help="Replace the file if it exists."),
) -> None:
    """Copy the database to FILE while the engine runs (SQLite); the copy is checked before it is kept."""
    settings = load_settings(state.config)
    make_engine(settings.database_url).dispose()  # an unusable [database] url is told as such, naming it
    if not is_sqlite(settings.database_url):
        raise UserError(postgresql_procedure())
    check_role("backup.run")
    result = backup_sqlite(settings.database_url, target, overwrite=force)
    with acting("backup.run") as (context, session, user):
        audit.record(
            session,
            actor=user.login,
            action="backup.run",
            subject_type="database",
            subject_id="sqlite",
            at=context.clock.now(),
            details={"target": str(result.target), "bytes": result.size},
        )
    console.print(
        _("Backed up the database to %(target)s (%(size)s MB, %(tables)s tables, integrity check passed).")
        % {"target": result.target, "size": f"{result.size / 1_000_000:.1f}", "tables": result.tables},
        highlight=False,
    )
