"""``broadcaster subject …``: a person's data-subject requests under the PDP Law (docs/domain.md §1.2):
export everything held about an address, or erase it leaving a tombstone."""

from __future__ import annotations

from pathlib import Path

import typer

from broadcaster.cli.common import acting, console, err_console, fail, print_table
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _
from broadcaster.subjects import export as exporting
from broadcaster.subjects.erase import checked_reference, erase, held_about, nothing_held
from broadcaster.subjects.held import keyed_hash, parse_subject

app = typer.Typer(
    no_args_is_help=True, help="Data-subject requests: export or erase what is held about a person."
)

AddressArgument = typer.Argument(..., help="A phone number (any usual spelling) or an e-mail address.")

# What the confirmation lists, in the officer's words.
TABLE_TEXTS = {
    "contacts": N_("Contacts"),
    "messages": N_("Messages sent (anonymised, kept for the statistics)"),
    "consent_events": N_("Consent history"),
    "suppressions": N_("Suppression list"),
    "do_not_call": N_("Do-not-call register"),
    "campaign_exclusions": N_("Campaign exclusion lists"),
    "inbox_replies": N_("Replies in the inbox"),
    "inbound_records": N_("Carrier receipts (content removed)"),
    "contact_import_problems": N_("Warnings of contact import reports (values removed)"),
}


@app.command("export")
def export(
    address: str = AddressArgument,
    out: Path | None = typer.Option(
        None, "--out", help="Write the JSON to this file (default: standard output)."
    ),
) -> None:
    """Everything held about the person, as JSON (UTF-8); the export is recorded in the audit trail."""
    with acting("subjects.export") as (context, session, user):
        subject = parse_subject(address)
        digest = keyed_hash(context.settings.security.erasure_key(), subject)
        document = exporting.export(
            session, subject, subject_hash=digest, actor=user.login, now=context.clock.now()
        )
        text = exporting.dumps(document)
        if out is not None:
            try:
                out.write_text(text, encoding="utf-8")
            except OSError as exc:  # the audit entry is rolled back with the export that did not happen
                fail(_("cannot write %(out)s: %(value)s") % {"out": out, "value": exc.strerror or exc})
    if out is None:
        typer.echo(text, nl=False)
        return
    total = sum(document["header"]["counts"].values())
    err_console.print(
        _("Wrote %(total)s record(s) about %(subject)s to %(out)s.")
        % {"total": total, "subject": subject.key, "out": out},
        highlight=False,
    )


@app.command("erase")
def erase_subject(
    address: str = AddressArgument,
    reference: str | None = typer.Option(
        None, "--reference", help="The request's reference, e.g. a dossier number (kept on the tombstone)."
    ),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Remove or anonymise everything held about the person, in one transaction; a tombstone remains."""
    with acting("subjects.erase", write=False) as (context, session, _user):
        subject = parse_subject(address)
        reference = checked_reference(reference, subject)
        digest = keyed_hash(context.settings.security.erasure_key(), subject)
        counts = held_about(session, subject).counts()
        if not any(counts.values()):
            raise nothing_held(session, subject, subject_hash=digest)
    print_table(
        _("Data to be erased about %(subject)s (dossier %(reference)s)")
        % {"subject": subject.key, "reference": reference},
        [_("Table"), _("Records")],
        [[_(TABLE_TEXTS[name]), n] for name, n in counts.items() if n],
    )
    if not yes and not typer.confirm(_("Erase for good? This cannot be undone."), default=False):
        fail(_("Cancelled: nothing changed."))
    with acting("subjects.erase") as (context, session, user):
        done = erase(
            session,
            subject,
            reference=reference,
            subject_hash=digest,
            actor=user.login,
            now=context.clock.now(),
        )
    console.print(
        _(
            "Erased the data about %(subject)s: %(total)s record(s); tombstone no. %(tombstone)s (dossier %(reference)s)."
        )
        % {
            "subject": subject.key,
            "total": sum(done.counts.values()),
            "tombstone": done.tombstone_id,
            "reference": reference,
        },
        highlight=False,
    )
