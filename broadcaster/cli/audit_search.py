"""``broadcaster audit search``: the auditor's view of the audit trail, listed or exported (docs/audit.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from broadcaster.audit.export import entry_dict, write_csv, write_jsonl
from broadcaster.audit.search import AuditFilter, FoundEntry, iter_entries
from broadcaster.cli.common import (
    ExportOutOption,
    FromOption,
    ToOption,
    acting,
    console,
    local_period,
    print_table,
    write_export,
)
from broadcaster.errors import UserError
from broadcaster.history.export import ExportFormat
from broadcaster.history.filters import recipient
from broadcaster.i18n import gettext as _
from broadcaster.web.labels import label

LIST_LIMIT = 50
WRITERS = {ExportFormat.CSV: write_csv, ExportFormat.JSONL: write_jsonl}


def search(
    actor: str | None = typer.Option(
        None, "--actor", help="Only entries by this login (or system component)."
    ),
    action: str | None = typer.Option(
        None, "--action", help="Only this action (campaign.approve), or a family ending in '.' (campaign.)."
    ),
    campaign: str | None = typer.Option(
        None, "--campaign", help="Only entries about this campaign, or whose details name it."
    ),
    recipient_text: str | None = typer.Option(
        None,
        "--recipient",
        help="Only entries about this phone number or e-mail address (found through its keyed hash).",
    ),
    period_from: str | None = FromOption,
    period_to: str | None = ToOption,
    limit: int | None = typer.Option(
        None,
        help=f"How many entries: the table shows the newest ({LIST_LIMIT} by default); exports go oldest "
        "first, all of them unless limited.",
    ),
    output_format: ExportFormat = typer.Option(
        ExportFormat.TABLE, "--format", help="table, csv (a header row) or jsonl (one entry a line)."
    ),
    out: Path | None = ExportOutOption,
) -> None:
    """Search the audit trail (every role that reads, auditors included); exports are streamed. Entries
    name people by keyed hash only, so what is shown or exported is masked for everyone."""
    exporting = output_format != ExportFormat.TABLE
    if out is not None and not exporting:
        raise UserError(_("--out: only with --format csv or --format jsonl"))
    if limit is not None and limit < 1:
        raise UserError(_("--limit %(limit)s: must be a positive number") % {"limit": limit})
    start, end = local_period(period_from, period_to)
    person = recipient(recipient_text) if recipient_text is not None else None
    with acting("read", write=False) as (context, session, _user):
        hashed = person.keyed(context.settings.security.erasure_key()).hashed if person else None
        if person is not None and hashed is None:
            raise UserError(
                _(
                    "--recipient: the settings have no key ([security] subject_key or unsubscribe_secret), "
                    "so a recipient cannot be found through their hash"
                )
            )
        filters = AuditFilter(
            actor=actor,
            action=action,
            campaign=campaign,
            recipient_hashes=(hashed,) if hashed else (),
            period_from=start,
            period_to=end,
        )
        if exporting:
            entries = iter_entries(session, filters, limit=limit)
            shown = write_export(lambda stream: WRITERS[output_format](entries, stream), out)
        else:
            listed = list(iter_entries(session, filters, newest_first=True, limit=limit or LIST_LIMIT))
    if exporting:
        if out is not None:
            console.print(
                _("Exported %(count)s audit log entries to %(out)s (%(format)s).")
                % {"count": shown, "out": out, "format": output_format.value},
                highlight=False,
            )
        return
    _print_listing(listed)


def _print_listing(entries: list[FoundEntry]) -> None:
    if not entries:
        console.print(_("No audit log entry matches."), highlight=False)
        return
    print_table(
        _("Audit log"),
        [_("ID"), _("Time"), _("Actor"), _("Action"), _("Subject"), _("Reason")],
        [
            [
                e["id"],
                e["at"],
                e["actor"],
                e["action"],
                f"{label(e['subject_type'], 'audit_subject')} {e['subject_id']}",
                e["reason"],
            ]
            for e in (entry_dict(entry) for entry in entries)
        ],
    )
