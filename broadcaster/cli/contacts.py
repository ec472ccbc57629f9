"""``broadcaster contacts …``: import files and look at what is stored."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import typer
from sqlalchemy import func, select

from broadcaster import masking
from broadcaster.cli.common import JsonOption, UnmaskedOption, acting, console, print_json, print_table
from broadcaster.cli.import_progress import import_progress
from broadcaster.contacts.importer import import_contacts
from broadcaster.db.models import Contact
from broadcaster.i18n import N_, ngettext, translate
from broadcaster.i18n import gettext as _
from consent.ledger import PUBLIC_INFORMATION, withdrawn_among

# How bad a row's problem is, as the report's table says it (the JSON keeps the English word).
_SEVERITY = {"error": N_("error"), "warning": N_("warning")}

app = typer.Typer(no_args_is_help=True, help="Contacts: import CSV/XLSX files, list what is stored.")

# The file format as broadcaster/contacts/reader.py reads it (README.md "Contacts file" says the same; a test
# holds both to the reader's columns and header aliases).
IMPORT_HELP = """Import contacts from a CSV file (UTF-8, with or without BOM, "," or ";") or an XLSX file (first
sheet); prints a row-level report (row, column, reason). A problem with the file itself imports nothing.

The first row names the columns, in any order; case, spaces and diacritics do not matter, and the
Vietnamese names in brackets work too:

- full_name (Họ và tên, Họ tên): required.
- phone (Số điện thoại, Điện thoại, SĐT): a Vietnamese number in any usual spelling (0905…, +84 905…).
- email (Thư điện tử, E-mail): each row needs a phone or an e-mail.
- segment (Nhóm, Đối tượng): e.g. citizen, civil_servant, business. Campaigns choose their audience by
  segment: the report lists the rows left without one, which no campaign reaches.
- external_id (Mã): your own id; a row with a known id updates that contact.
- agency (Cơ quan, Đơn vị), district (Quận/Huyện, Quận), ward (Phường/Xã, Phường): campaign filters.
- language (Ngôn ngữ): vi by default.
- tags (Nhãn): separated by "," or ";".

Any other column is kept with the contact (contact.attributes in templates)."""


@app.command("import", help=IMPORT_HELP)
def import_(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="The contacts file: .csv (UTF-8) or .xlsx."
    ),
    as_json: bool = JsonOption,
    show: int = typer.Option(50, help="Problems to list in the table (all are in --json or the row report)."),
    details_dir: Path | None = typer.Option(
        None,
        help="Where the row report goes when its lists are long (CSV of every merge, problem and row without "
        "a segment); by default next to the file.",
    ),
) -> None:
    # With --json, stdout holds only the JSON: the progress goes to stderr.
    progress_out = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    with (
        acting("contacts.import") as (context, session, user),
        progress_out,
        import_progress(file.name, console=console) as on_batch,
    ):
        report = import_contacts(
            session,
            path=file,
            actor=user.login,
            clock=context.clock,
            limits=context.settings.contacts,
            details_dir=details_dir or file.resolve().parent,
            on_batch=on_batch,
        )
    if as_json:
        print_json(report.as_dict())
        return
    console.print(
        _(
            "[bold]%(name)s[/]: %(total_rows)s rows — [green]%(created)s created[/], %(updated)s updated, [yellow]%(skipped)s skipped[/], %(count)s merged."
        )
        % {
            "name": file.name,
            "total_rows": report.total_rows,
            "created": report.created,
            "updated": report.updated,
            "skipped": report.skipped,
            "count": report.merge_count,
        }
    )
    if report.merges:
        print_table(
            _("Merged rows"),
            [_("row"), _("contact"), _("matched by")],
            [[m.row, m.contact_id, m.matched_by] for m in report.merges[:show]],
        )
    if report.problems:
        print_table(
            _("Problems (%(count)s)") % {"count": report.problem_count},
            [_("row"), _("column"), _("value"), _("severity"), _("reason")],
            [
                [p.row, p.column, p.value, _(_SEVERITY[p.severity]), translate(p.reason)]
                for p in report.problems[:show]
            ],
        )
        more = report.problem_count - min(show, len(report.problems))
        if more > 0 and report.details_file is None:
            console.print(_("… %(value)s more; use --json for all.") % {"value": more})
        elif more > 0:
            console.print(_("… %(value)s more in the row report.") % {"value": more})
    if report.without_segment:
        rows = ", ".join(map(str, report.without_segment[:show]))
        count = report.without_segment_count
        ellipsis = ", …" if count > show else ""
        warning = ngettext(
            "[yellow]%(n)s row has no segment, so no campaign reaches it[/]: row %(rows)s. Fill its segment "
            "column (Nhóm) and import the file again.",
            "[yellow]%(n)s rows have no segment, so no campaign reaches them[/]: rows %(rows)s. Fill the "
            "segment column (Nhóm) for them and import the file again.",
            count,
        )
        console.print(warning % {"n": count, "rows": rows + ellipsis}, highlight=False)
    if report.details_file is not None:
        console.print(
            _("Row report (every merge, problem and row without a segment): %(path)s")
            % {"path": report.details_file},
            highlight=False,
        )


@app.command("list")
def list_(
    segment: str | None = typer.Option(None, help="Only contacts of this segment (e.g. citizen)."),
    limit: int = typer.Option(20, help="How many contacts to list, newest first."),
    unmasked: bool = UnmaskedOption,
    as_json: bool = JsonOption,
) -> None:
    """List stored contacts (newest first). Auditors and admins see names, phones and e-mails masked."""
    with acting("read", write=unmasked) as (context, session, user):
        mask = masking.must_mask(user, unmasked=unmasked)
        query = select(Contact).order_by(Contact.id.desc()).limit(limit)
        count_query = select(func.count()).select_from(Contact)
        if segment:
            query = query.where(Contact.segment == segment)
            count_query = count_query.where(Contact.segment == segment)
        total = session.scalar(count_query) or 0
        contacts = list(session.scalars(query))
        # The opt-out columns say what the ledger says for public information, the purpose most campaigns have.
        sms_out = withdrawn_among(session, "sms", PUBLIC_INFORMATION, [c.phone for c in contacts if c.phone])
        email_out = withdrawn_among(
            session, "email", PUBLIC_INFORMATION, [c.email for c in contacts if c.email]
        )
        rows = [
            {
                "id": c.id,
                "external_id": c.external_id,
                "full_name": masking.mask_name(c.full_name) if mask else c.full_name,
                "phone": masking.mask_phone(c.phone) if mask else c.phone,
                "carrier": c.carrier,
                "email": masking.mask_email(c.email) if mask else c.email,
                "segment": c.segment,
                "district": c.district,
                "sms_opt_out": c.phone in sms_out,
                "email_opt_out": c.email in email_out,
            }
            for c in contacts
        ]
        if unmasked:
            masking.record_unmasked(
                session,
                actor=user,
                what="contacts",
                filters={"segment": segment, "limit": limit},
                shown=len(rows),
                clock=context.clock,
            )
    if as_json:
        print_json({"total": total, "contacts": rows})
        return
    print_table(
        _("Contacts (%(total)s)") % {"total": total},
        [
            _("id"),
            _("external id"),
            _("name"),
            _("phone"),
            _("carrier"),
            _("email"),
            _("segment"),
            _("district"),
        ],
        [
            [
                r["id"],
                r["external_id"],
                r["full_name"],
                r["phone"],
                r["carrier"],
                r["email"],
                r["segment"],
                r["district"],
            ]
            for r in rows
        ],
    )
