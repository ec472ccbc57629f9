"""``broadcaster activities record|list``: the plan's activities that are not broadcasts, and the runs that are."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from broadcaster.activities import KIND_LABELS, ActivityKind, list_activities, record_activity
from broadcaster.campaigns.plan import plan_from_settings
from broadcaster.cli.common import JsonOption, acting, console, print_json, print_table
from broadcaster.i18n import gettext as _
from broadcaster.reporting.periods import parse_date, period_from_options

app = typer.Typer(
    no_args_is_help=True, help="Communication activities of the plan (briefings, dialogues, runs)."
)

# How the table names each kind (Vietnamese, as staff say it).


@app.command("record")
def record(
    on: str = typer.Option(..., "--date", help="The day it took place, YYYY-MM-DD (not in the future)."),
    plan_item: str = typer.Option(
        ..., "--plan-item", help="The plan item, e.g. III.4 (campaigns/plan-143/plan.yaml)."
    ),
    agency: str = typer.Option(
        ..., "--agency", help="An agency key of the settings' [agencies], e.g. vp-ubnd."
    ),
    kind: str = typer.Option(..., "--kind", help=f"One of: {', '.join(k.value for k in ActivityKind)}."),
    title: str = typer.Option(..., "--title", help="What was done (Vietnamese)."),
    evidence: str | None = typer.Option(
        None, "--evidence", help="A file (copied into evidence/ under its SHA-256) or an http(s):// link."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Record an activity of the plan that is not a broadcast (editors and admins); audited."""
    with acting("activities.record") as (context, session, user):
        occurred_on = parse_date(on, option="--date")  # after the settings: their errors come first
        settings = context.settings
        activity = record_activity(
            session,
            plan=plan_from_settings(settings),
            agencies=settings.agencies,
            occurred_on=occurred_on,
            plan_item=plan_item.strip(),
            agency=agency.strip(),
            kind=kind.strip(),
            title=title,
            evidence=evidence,
            workdir=settings.base_dir,
            cwd=Path.cwd(),
            actor=user.login,
            clock=context.clock,
            zone=ZoneInfo(settings.timezone),
        )
        result = {
            "id": activity.id,
            "date": activity.occurred_on.isoformat(),
            "plan_item": activity.plan_item,
            "agency": activity.agency,
            "kind": activity.kind,
            "evidence": activity.evidence,
            "evidence_sha256": activity.evidence_sha256,
        }
    if as_json:
        print_json(result)
        return
    console.print(
        _("Recorded activity #%(id)s on %(day)s under plan item %(item)s.")
        % {"id": result["id"], "day": f"{occurred_on:%d/%m/%Y}", "item": result["plan_item"]},
        highlight=False,
    )
    if result["evidence_sha256"]:
        console.print(
            _("Evidence kept at %(evidence)s (SHA-256 %(sha256)s).")
            % {"evidence": result["evidence"], "sha256": result["evidence_sha256"]},
            highlight=False,
        )


@app.command("list")
def list_(
    period: str | None = typer.Option(
        None, "--period", help="A half-year: 2026-H1 or 2026-H2 ([reports] cut-offs)."
    ),
    start: str | None = typer.Option(None, "--from", help="First day, YYYY-MM-DD."),
    end: str | None = typer.Option(None, "--to", help="Last day, YYYY-MM-DD."),
    plan_item: str | None = typer.Option(None, "--plan-item", help="Only this plan item, e.g. III.4."),
    as_json: bool = JsonOption,
) -> None:
    """Recorded activities and broadcast runs (a run counts under its campaign's plan item, on its start day)."""
    with acting("read", write=False) as (context, session, _user):
        settings = context.settings
        chosen = period_from_options(period=period, start=start, end=end, reports=settings.reports)
        bounds = {"start": chosen.start, "end": chosen.end} if chosen is not None else {}
        rows = list_activities(
            session,
            plan=plan_from_settings(settings),
            agencies=settings.agencies,
            zone=ZoneInfo(settings.timezone),
            plan_item=plan_item.strip() if plan_item is not None else None,
            **bounds,
        )
    if as_json:
        print_json(
            {
                "period": None
                if chosen is None
                else {"label": chosen.label, "from": chosen.start.isoformat(), "to": chosen.end.isoformat()},
                "activities": [asdict(row) | {"occurred_on": row.occurred_on.isoformat()} for row in rows],
            }
        )
        return
    title = _("Communication activities of administrative reform")
    if chosen is not None:
        title += (
            _(" — period %(period)s, %(span)s") % {"period": chosen.label, "span": chosen.describe()}
            if period
            else f" — {chosen.describe()}"
        )
    if not rows:
        console.print(_("%(title)s: no activity yet.") % {"title": title}, highlight=False)
        return
    print_table(
        title,
        [_("Day"), _("Plan item"), _("Kind"), _("What"), _("Agency"), _("Evidence")],
        [
            [
                f"{row.occurred_on:%d/%m/%Y}",
                row.plan_item,
                KIND_LABELS.get(row.kind, row.kind),
                row.title,
                row.agency_name,
                row.evidence or "",
            ]
            for row in rows
        ],
    )
    console.print(_("In all: %(count)s activities.") % {"count": len(rows)}, highlight=False)
