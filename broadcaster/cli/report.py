"""``broadcaster report --period 2026-H1 --format csv --out FILE`` and ``broadcaster report rollup``: the
plan's communications report for a period, from the daily rollups (docs/plan.md, "Reports")."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import typer

from broadcaster import audit
from broadcaster.cli.common import acting, console
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.reporting.generate import generate_report
from broadcaster.reporting.model import Report
from broadcaster.reporting.periods import Period, parse_date, period_from_options
from broadcaster.reporting.rollups import rebuild_in_steps
from broadcaster.reporting.writers import WRITERS, writer_for
from broadcaster.settings_sections import ReportSettings
from broadcaster.users import require
from broadcaster.whole_files import writing_whole

app = typer.Typer(
    help="The plan's communications report for a period (CSV; DOCX and XLSX where installed).",
    invoke_without_command=True,
)


def _period(period: str | None, start: str | None, end: str | None, reports: ReportSettings) -> Period:
    chosen = period_from_options(period=period, start=start, end=end, reports=reports)
    if chosen is None:
        raise UserError(_("give --period 2026-H1|2026-H2, or --from and --to (YYYY-MM-DD)"))
    return chosen


def _default_out(period: Period, fmt: str) -> Path:
    return Path(f"bao-cao-{re.sub(r'[^0-9A-Za-z-]+', '_', period.label).strip('_')}.{fmt}")


def _write(built: Report, fmt: str, target: Path) -> None:
    """The whole document or nothing: written to ``<out>.part``, renamed when the writer returns."""
    with writing_whole(target) as partial, partial.open("wb") as handle:
        writer_for(fmt)(built, handle)


@app.callback()
def report(
    ctx: typer.Context,
    period: str | None = typer.Option(
        None,
        "--period",
        help="A half-year: 2026-H1 or 2026-H2 (cut-offs: the settings' h1_cutoff, h2_cutoff).",
    ),
    start: str | None = typer.Option(None, "--from", help="First day, YYYY-MM-DD."),
    end: str | None = typer.Option(None, "--to", help="Last day, YYYY-MM-DD."),
    fmt: str = typer.Option("csv", "--format", help=f"One of: {', '.join(WRITERS)}."),
    out: Path | None = typer.Option(
        None, "--out", help="The file to write (default: bao-cao-<period>.<format>)."
    ),
    number: str = typer.Option("", "--number", help="The document's number (số), blank for the clerk."),
) -> None:
    """Write the report of a period (admins, editors, auditors); the open days' rollups are rebuilt first
    (for an auditor, only for this report: nothing is stored)."""
    if ctx.invoked_subcommand is not None:
        return
    if fmt not in WRITERS:
        raise UserError(
            _("--format: unknown format %(fmt)s (known: %(join)s)")
            % {"fmt": repr(fmt), "join": ", ".join(WRITERS)}
        )
    if out is not None and not out.parent.is_dir():
        raise UserError(_("--out: no such folder %(parent)s") % {"parent": out.parent})
    with acting("reports.read", write=False) as (context, _session, user):
        settings = context.settings
        chosen = _period(period, start, end, settings.reports)
        built = generate_report(context, user, chosen, number=number)
    target = out if out is not None else _default_out(chosen, fmt)
    _write(built, fmt, target)
    totals = built.totals
    rate = "—" if totals.delivery_rate is None else f"{totals.delivery_rate:.1%}".replace(".", ",")
    console.print(
        _("Report of period %(period)s (%(span)s).") % {"period": chosen.label, "span": chosen.describe()},
        highlight=False,
    )
    console.print(
        _(
            "Messages planned %(planned)s, sent %(sent)s, delivered %(delivered)s (rate %(rate)s), "
            "failed %(failed)s, suppressed %(suppressed)s; %(people)s recipients; %(activities)s activities."
        )
        % {
            "planned": totals.planned,
            "sent": totals.sent,
            "delivered": totals.delivered,
            "rate": rate,
            "failed": totals.failed,
            "suppressed": totals.suppressed,
            "people": totals.people,
            "activities": len(built.activities),
        },
        highlight=False,
    )
    console.print(_("Wrote %(file)s (%(format)s).") % {"file": target, "format": fmt}, highlight=False)


@app.command("rollup")
def rollup(
    start: str | None = typer.Option(None, "--from", help="First day, YYYY-MM-DD (default: the first data)."),
    end: str | None = typer.Option(None, "--to", help="Last day, YYYY-MM-DD (default: today)."),
    refreeze: bool = typer.Option(
        False, "--refreeze", help="Rebuild frozen days of closed periods too (admins; audited)."
    ),
    reason: str | None = typer.Option(
        None, "--reason", help="Why frozen days are rebuilt (with --refreeze)."
    ),
) -> None:
    """Rebuild the daily rollups of a range (editors and admins); frozen days are skipped."""
    first = parse_date(start, option="--from") if start is not None else date.min
    last = parse_date(end, option="--to") if end is not None else date.max
    if first > last:
        raise UserError(
            _("--from %(first)s is after --to %(last)s")
            % {"first": f"{first:%Y-%m-%d}", "last": f"{last:%Y-%m-%d}"}
        )
    if refreeze and not (reason or "").strip():
        raise UserError(_("--refreeze needs --reason: rebuilding a closed period changes what was reported"))
    with acting("reports.rollup", write=False) as (context, _session, user):
        if refreeze:
            require(user, "reports.refreeze")
            with context.sessions.begin() as session:  # audited before anything frozen changes
                audit.record(
                    session,
                    actor=user.login,
                    action="rollup.refrozen",
                    subject_type="rollup",
                    subject_id=f"{start or 'first'}..{end or 'today'}",
                    at=context.clock.now(),
                    reason=reason,
                )
        result = rebuild_in_steps(
            context.sessions, context.settings, start=first, end=last, clock=context.clock, actor=user.login,
            refreeze=refreeze,
        )  # fmt: skip
    if not result.rebuilt and not result.skipped_frozen:
        console.print(_("No data to roll up in this range yet."), highlight=False)
        return
    if result.rebuilt:
        console.print(
            _("Rolled up %(count)s day(s), from %(first)s to %(last)s.")
            % {
                "count": len(result.rebuilt),
                "first": f"{result.rebuilt[0]:%d/%m/%Y}",
                "last": f"{result.rebuilt[-1]:%d/%m/%Y}",
            },
            highlight=False,
        )
    if result.skipped_frozen:
        console.print(
            _(
                "Skipped %(count)s frozen day(s) (closed reporting period); an admin rolls them up again "
                "with --refreeze --reason …."
            )
            % {"count": len(result.skipped_frozen)},
            highlight=False,
        )
    if result.newly_frozen:
        console.print(
            _("Froze %(count)s more day(s) of the closed period.") % {"count": len(result.newly_frozen)},
            highlight=False,
        )
