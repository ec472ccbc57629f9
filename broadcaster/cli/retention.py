"""``broadcaster retention run [--dry-run] [--json]``: blank the personal data older than ``[retention]
personal_data_days`` now (admins only); the tick does the same once a day (broadcaster/retention.py)."""

from __future__ import annotations

import typer

from broadcaster.cli.common import JsonOption, acting, console, print_json, print_table
from broadcaster.clock import local
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _
from broadcaster.retention import TABLES, apply_retention, inbound_cutoff, purge_inbound

app = typer.Typer(
    no_args_is_help=True,
    help="Retention: remove message content and recipient addresses after [retention] personal_data_days.",
)

# What is blanked in each table, in the officer's words.
TABLE_TEXTS = {
    "messages": N_("Messages (addresses and content removed, hashes and statuses kept)"),
    "inbound_records": N_("Carrier receipts, bounce mails (content removed)"),
    "inbox_replies": N_("Replies in the inbox (phone numbers and content removed)"),
    "contact_import_problems": N_("Warnings of contact import reports (values removed)"),
}
PURGED_TEXT = N_("Raw carrier receipts and bounce mails applied over %(days)s days ago (deleted)")


@app.command("run")
def run(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Only count what would be removed; change nothing."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Remove addresses and content settled before the retention period, keeping hashes, statuses, events and
    frozen report figures (one audit entry per run)."""
    with acting("retention.run", write=not dry_run) as (context, session, user):
        report = apply_retention(
            session, settings=context.settings, clock=context.clock, dry_run=dry_run, actor=user.login
        )
        now = context.clock.now()
        deleted, _complete = purge_inbound(
            session, cutoff=inbound_cutoff(context.settings, now), now=now, dry_run=dry_run, actor=user.login
        )
    if json_output:
        print_json(
            {
                "cutoff": report.cutoff,
                "dry_run": report.dry_run,
                "counts": report.counts,
                "frozen_days": report.frozen_days,
                "inbound_records_deleted": deleted,
            }
        )
        return
    cutoff = f"{local(report.cutoff):%H:%M %d/%m/%Y}"
    title = (
        _("Would remove personal data from before %(cutoff)s")
        if dry_run
        else _("Removed personal data from before %(cutoff)s")
    )
    print_table(
        title % {"cutoff": cutoff},
        [_("Table"), _("Records")],
        [
            *([_(TABLE_TEXTS[name]), report.counts[name]] for name in TABLES),
            [_(PURGED_TEXT) % {"days": context.settings.retention.inbound_days}, deleted],
        ],
    )
    if report.frozen_days:
        console.print(
            _("Froze the report figures of %(days)s day(s) before removing.") % {"days": report.frozen_days},
            highlight=False,
        )
    if dry_run:
        console.print(_("Dry run: nothing changed."), highlight=False)
    elif not report.total and not deleted:
        console.print(_("No data is past its retention period."), highlight=False)
