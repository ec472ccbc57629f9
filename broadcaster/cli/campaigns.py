"""``broadcaster campaigns …``: validate and load files, list, preview and diff versions.

The approval commands live in ``campaign_review``, test sends in ``test_send``, exclusion lists in
``campaign_exclusions``, retries of the failed in ``campaign_retry``; they register on this app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from broadcaster.campaigns.files import ProviderInfo, SendRules, validate_paths
from broadcaster.campaigns.plan import plan_from_settings
from broadcaster.campaigns.preview import preview_version
from broadcaster.campaigns.store import get_campaign, get_version, load_bundle
from broadcaster.cli import campaign_exclusions, campaign_retry, campaign_review, test_send
from broadcaster.cli.common import (
    CampaignArgument,
    JsonOption,
    VersionOption,
    acting,
    console,
    err_console,
    load_context,
    print_json,
    print_table,
)
from broadcaster.clock import local
from broadcaster.context import AppContext
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _
from broadcaster.web.labels import label
from channels.base import Channel

app = typer.Typer(no_args_is_help=True, help="Campaign definitions, versions and approval.")


def _paths(context: AppContext, paths: list[Path] | None) -> list[Path]:
    return paths or [context.campaigns_dir]


@app.command()
def validate(
    paths: list[Path] = typer.Argument(None, help="Files or directories (default: campaigns/)."),
    as_json: bool = JsonOption,
) -> None:
    """Check campaign files and their templates; every problem is reported with file:line and field."""
    context = load_context()
    try:
        bundles, problems = validate_paths(
            _paths(context, paths),
            templates_dir=context.templates_dir,
            providers=ProviderInfo.all_from(context.settings),
            rules=SendRules.from_settings(context.settings),
            plan=plan_from_settings(context.settings),
        )
    finally:
        context.close()
    if as_json:
        print_json(
            {
                "valid": [
                    {"id": b.definition.id, "file": str(b.source), "content_hash": b.content_hash}
                    for b in bundles
                ],
                "problems": [
                    {"file": str(p.file), "line": p.line, "field": p.field, "message": p.message}
                    for p in problems
                ],
            }
        )
    else:
        for bundle in bundles:
            console.print(
                _("[green]ok[/]  %(source)s  (%(id)s)")
                % {"source": bundle.source, "id": bundle.definition.id}
            )
        for problem in problems:
            err_console.print(f"[red]{escape(str(problem))}[/]", highlight=False)
        console.print(
            _("%(count)s valid, %(count2)s problem(s).") % {"count": len(bundles), "count2": len(problems)}
        )
    if problems:
        raise typer.Exit(1)


@app.command()
def load(
    paths: list[Path] = typer.Argument(None, help="Files or directories (default: campaigns/)."),
    as_json: bool = JsonOption,
) -> None:
    """Load campaign files: a changed file becomes a new draft version. Nothing is loaded if any file is invalid."""
    with acting("campaigns.load") as (context, session, user):
        bundles, problems = validate_paths(
            _paths(context, paths),
            templates_dir=context.templates_dir,
            providers=ProviderInfo.all_from(context.settings),
            rules=SendRules.from_settings(context.settings),
            plan=plan_from_settings(context.settings),
        )
        if problems:
            for problem in problems:
                err_console.print(f"[red]{escape(str(problem))}[/]", highlight=False)
            err_console.print(
                _("[bold red]error:[/] %(count)s problem(s); nothing was loaded. Fix them and run again.")
                % {"count": len(problems)}
            )
            raise typer.Exit(1)
        outcomes = [load_bundle(session, b, actor=user.login, clock=context.clock) for b in bundles]
    if as_json:
        print_json([o.__dict__ for o in outcomes])
        return
    print_table(
        _("Loaded"),
        [_("campaign"), _("version"), _("status"), _("hash"), _("superseded")],
        [
            [
                o.campaign_id,
                o.version,
                _(_LOAD_OUTCOME.get(o.status, o.status)),
                o.content_hash[:12],
                ", ".join(map(str, o.superseded)),
            ]
            for o in outcomes
        ],
    )


# What loading did to each campaign (campaigns.store.LoadOutcome.status; --json keeps the code).
_LOAD_OUTCOME = {
    "created": N_("new campaign"),
    "unchanged": N_("unchanged"),
    "new_version": N_("new version"),
}


@app.command("list")
def list_(as_json: bool = JsonOption) -> None:
    """List campaigns with their state and latest version."""
    from sqlalchemy import select

    from broadcaster.db.models import Campaign

    with acting("read", write=False) as (_context, session, _user):
        rows: list[dict[str, Any]] = []
        for campaign in session.scalars(select(Campaign).order_by(Campaign.id)):
            latest = campaign.versions[-1] if campaign.versions else None
            rows.append(
                {
                    "id": campaign.id,
                    "title": campaign.title,
                    "state": campaign.state.value,
                    "latest_version": latest.number if latest else None,
                    "latest_status": latest.status.value if latest else None,
                    "next_occurrence_at": local(campaign.next_occurrence_at).isoformat()
                    if campaign.next_occurrence_at
                    else None,
                }
            )
    if as_json:
        print_json(rows)
        return
    print_table(
        _("Campaigns"),
        [_("id"), _("title"), _("state"), _("version"), _("version status"), _("next")],
        [
            [
                r["id"],
                r["title"],
                label(r["state"], "campaign_state"),
                r["latest_version"],
                label(r["latest_status"], "version_status"),
                r["next_occurrence_at"],
            ]
            for r in rows
        ],
    )


@app.command()
def preview(
    campaign_id: str = CampaignArgument,
    version: int | None = VersionOption,
    samples: int = typer.Option(3, help="Sample renderings per channel."),
    as_json: bool = JsonOption,
) -> None:
    """Per-channel counts, exclusions, SMS encoding and segments, estimated cost, and sample renderings."""
    with acting("read", write=False) as (context, session, _user):
        get_campaign(session, campaign_id)
        result = preview_version(
            session,
            get_version(session, campaign_id, version),
            context.settings,
            now=context.clock.now(),
            samples=samples,
        )
    if as_json:
        print_json(result.as_dict())
        return
    console.print(
        _(
            "[bold]%(campaign_id)s[/] version %(version)s (%(status)s), content hash [cyan]%(value)s[/]\nAudience: %(audience_contacts)s contacts, %(reached_contacts)s reached on at least one channel."
        )
        % {
            "campaign_id": result.campaign_id,
            "version": result.version,
            "status": result.status,
            "value": result.content_hash[:16],
            "audience_contacts": result.audience_contacts,
            "reached_contacts": result.reached_contacts,
        }
    )
    for item in result.channels:
        console.rule(
            _("%(channel)s via %(provider)s — template %(template)s")
            % {"channel": item.channel, "provider": item.provider, "template": item.template}
        )
        console.print(_("Recipients: [bold]%(recipients)s[/]") % {"recipients": item.recipients})
        for reason, count in item.exclusions.items():
            console.print(_("  excluded: %(count)s — %(reason)s") % {"count": count, "reason": _(reason)})
        for reason, count in item.deferred.items():
            console.print(
                _("  %(reason)s: %(count)s (sent later, counted in the recipients)")
                % {"reason": _(reason), "count": count}
            )
        if item.channel == Channel.SMS:
            encodings = ", ".join(f"{k}: {v}" for k, v in item.encodings.items()) or "-"
            console.print(
                _(
                    "Encoding: %(encodings)s; parts in total: %(segments)s (max %(max_segments)s per message); estimated cost: %(estimated_cost)s %(currency)s"
                )
                % {
                    "encodings": encodings,
                    "segments": item.segments,
                    "max_segments": item.max_segments,
                    "estimated_cost": f"{item.estimated_cost:,.0f}",
                    "currency": item.currency,
                }
            )
        if item.channel == Channel.PUSH:
            console.print(_("One message per registered device (docs/push.md)."))
        if item.channel == Channel.SOCIAL and item.samples and sample_is_post(item.samples[0]):
            console.print(
                _("One post per Page the campaign lists, whoever the audience is (docs/social.md).")
            )
        for sample in item.samples:
            header = f"→ {sample['to']} ({sample['name']})" if sample["name"] else f"→ {sample['to']}"
            if sample["subject"] and item.channel == Channel.PUSH:
                header += "\n  " + _("Title: %(title)s") % {"title": sample["subject"]}
            elif sample["subject"]:
                header += "\n  " + _("Subject: %(subject)s") % {"subject": sample["subject"]}
            if sample.get("link"):
                header += "\n  " + _("Link: %(link)s") % {"link": sample["link"]}
            if sample.get("image"):
                header += "\n  " + _("Image: %(image)s") % {"image": sample["image"]}
            if sample.get("template_id"):
                header += "\n  " + _("ZNS template: %(template)s %(data)s") % {
                    "template": sample["template_id"],
                    "data": sample.get("template_data") or {},
                }
            console.print(header, highlight=False)
            console.print("  " + sample["text"].replace("\n", "\n  "), highlight=False, markup=False)


def sample_is_post(sample: dict[str, object]) -> bool:
    """A preview sample of a post to a named target (no person)."""
    return sample.get("name") is None


@app.command()
def diff(
    campaign_id: str = CampaignArgument,
    old: int = typer.Argument(..., help="The version to compare from (e.g. the one approved now)."),
    new: int = typer.Argument(..., help="The version to compare to (e.g. the one submitted for approval)."),
    as_json: bool = JsonOption,
) -> None:
    """What changed between two versions: a unified diff of the campaign file and of each template that differs."""
    from rich.text import Text

    from broadcaster.campaigns.diff import diff_versions

    with acting("read", write=False) as (_context, session, _user):
        result = diff_versions(session, campaign_id, old, new)
        data = result.as_dict()
    if as_json:
        print_json(data)
        return
    console.print(
        _(
            "[bold]%(campaign_id)s[/]: version %(old)s (%(value)s) → version %(new)s (%(value2)s); %(count)s file(s) differ."
        )
        % {
            "campaign_id": campaign_id,
            "old": old,
            "value": data["from"]["content_hash"][:12],
            "new": new,
            "value2": data["to"]["content_hash"][:12],
            "count": len(result.files),
        }
    )
    for file in result.files:
        console.rule(f"{file.path} ({file.change})")
        for line in file.diff.splitlines():
            console.print(Text(line, style=_diff_style(line)), soft_wrap=True)  # a diff line stays one line


def _diff_style(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "bold"
    if line.startswith("@@"):
        return "cyan"
    return "green" if line.startswith("+") else "red" if line.startswith("-") else ""


# The review commands and test-send come after these in the help, as they are used.
campaign_review.register(app)
test_send.register(app)
campaign_exclusions.register(app)
campaign_retry.register(app)
