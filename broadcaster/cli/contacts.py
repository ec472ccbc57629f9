"""``broadcaster contacts …``: import files and look at what is stored."""

from __future__ import annotations

from pathlib import Path

import typer
from sqlalchemy import func, select

from broadcaster import masking
from broadcaster.cli.common import JsonOption, UnmaskedOption, acting, console, print_json, print_table
from broadcaster.contacts.importer import import_contacts
from broadcaster.db.models import Contact

app = typer.Typer(no_args_is_help=True, help="Contacts: import CSV/XLSX files, list what is stored.")


@app.command("import")
def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="CSV (UTF-8) or XLSX."),
    as_json: bool = JsonOption,
    show: int = typer.Option(50, help="Problems to list in the table (all are in --json)."),
) -> None:
    """Import contacts; prints a row-level report (row, column, reason). A fatal error imports nothing."""
    with acting("contacts.import") as (context, session, user):
        report = import_contacts(session, path=file, actor=user.login, clock=context.clock)
    if as_json:
        print_json(report.as_dict())
        return
    console.print(
        f"[bold]{file.name}[/]: {report.total_rows} rows — [green]{report.created} created[/], "
        f"{report.updated} updated, [yellow]{report.skipped} skipped[/], {len(report.merges)} merged."
    )
    if report.merges:
        print_table(
            "Merged rows",
            ["row", "contact", "matched by"],
            [[m.row, m.contact_id, m.matched_by] for m in report.merges[:show]],
        )
    if report.problems:
        print_table(
            f"Problems ({len(report.problems)})",
            ["row", "column", "value", "severity", "reason"],
            [[p.row, p.column, p.value, p.severity, p.reason] for p in report.problems[:show]],
        )
        if len(report.problems) > show:
            console.print(f"… {len(report.problems) - show} more; use --json for all.")


@app.command("list")
def list_(
    segment: str | None = typer.Option(None, help="Only contacts of this segment."),
    limit: int = typer.Option(20, help="How many contacts to show."),
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
                "sms_opt_out": c.sms_opt_out,
                "email_opt_out": c.email_opt_out,
            }
            for c in session.scalars(query)
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
        f"Contacts ({total})",
        ["id", "external id", "name", "phone", "carrier", "email", "segment", "district"],
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
