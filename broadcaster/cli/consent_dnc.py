"""``broadcaster consent dnc …``: import the do-not-call register (each import replaces it) and show which
import is in force."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from broadcaster.cli.common import JsonOption, acting, console, print_json, print_table, stored_utc
from broadcaster.clock import local
from broadcaster.consent_lists import import_do_not_call
from broadcaster.i18n import gettext as _
from consent.dnc import current_import

app = typer.Typer(no_args_is_help=True, help="The do-not-call register (DNC), applied to advertising SMS.")

FileArgument = typer.Argument(
    ...,
    dir_okay=False,
    help='One phone number per line (plain text) or a CSV with a "phone" column; blank lines and "#" '
    "comments are allowed.",
)


@app.command("import")
def import_(file: Path = FileArgument) -> None:
    """Replace the register with the numbers of FILE. One bad line refuses the whole file (its line and value
    are named) and nothing changes; pending advertising SMS to listed numbers stop at once."""
    with acting("consent.manage") as (context, session, user):
        report = import_do_not_call(
            session, path=file, actor=user.login, clock=context.clock, limits=context.settings.contacts
        )
    console.print(
        _(
            "Imported the DNC register from %(file)s: %(numbers)s number(s) (replacing %(previous)s); "
            "%(stopped)s pending advertising message(s) to these numbers stopped."
        )
        % {
            "file": file.name,
            "numbers": f"{report.numbers:,}",
            "previous": f"{report.previous:,}",
            "stopped": f"{report.stopped:,}",
        },
        highlight=False,
    )


@app.command("status")
def status(as_json: bool = JsonOption) -> None:
    """The import whose numbers are the register now."""
    with acting("read", write=False) as (_context, session, _user):
        entry = current_import(session)
        shown: dict[str, Any] | None = (
            None
            if entry is None
            else {
                "import_id": entry.id,
                "file": entry.source_name,
                "numbers": entry.numbers,
                "sha256": entry.sha256,
                "imported_by": entry.imported_by,
                "imported_at": local(stored_utc(entry.imported_at)),
            }
        )
    if as_json:
        print_json(shown)
        return
    if shown is None:
        console.print(
            _("No DNC register imported yet: `broadcaster consent dnc import FILE` imports one."),
            highlight=False,
        )
        return
    print_table(
        _("The do-not-call register (DNC) in force"),
        [_("Import"), _("File"), _("Numbers"), "SHA-256", _("Imported by"), _("Imported at")],
        [
            [
                shown["import_id"],
                shown["file"],
                f"{shown['numbers']:,}",
                shown["sha256"],
                shown["imported_by"],
                f"{shown['imported_at']:%d/%m/%Y %H:%M}",
            ]
        ],
    )
