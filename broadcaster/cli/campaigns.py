"""``broadcaster campaigns …``: validate and load files, preview, and move versions through approval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from broadcaster.campaigns import workflow
from broadcaster.campaigns.files import ProviderInfo, validate_paths
from broadcaster.campaigns.preview import preview_version
from broadcaster.campaigns.store import get_campaign, get_version, load_bundle
from broadcaster.cli.common import (
    CampaignArgument,
    JsonOption,
    acting,
    console,
    err_console,
    load_context,
    print_error,
    print_json,
    print_table,
)
from broadcaster.clock import local
from broadcaster.context import AppContext
from broadcaster.outbox.sending import ProviderFailure
from broadcaster.settings import Settings
from channels.base import Channel

app = typer.Typer(no_args_is_help=True, help="Campaign definitions, versions and approval.")

ReasonOption = typer.Option(None, "--reason", "-m", help="Why (kept in the audit log).")
VersionOption = typer.Option(None, "--version", "-v", help="Version number (default: the latest).")
HashOption = typer.Option(
    None,
    "--hash",
    help="Required: the content hash (a prefix of at least 8 characters) of the version you reviewed, as shown "
    "by 'campaigns preview' and 'status'; a version that changed since is refused.",
)


def _providers(context: AppContext) -> dict[str, ProviderInfo]:
    return {
        name: ProviderInfo(name=name, channel=p.channel) for name, p in context.settings.providers.items()
    }


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
            providers=_providers(context),
            org=context.settings.org.model_dump(),
            limits=context.settings.rendering,
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
            console.print(f"[green]ok[/]  {bundle.source}  ({bundle.definition.id})")
        for problem in problems:
            err_console.print(f"[red]{escape(str(problem))}[/]", highlight=False)
        console.print(f"{len(bundles)} valid, {len(problems)} problem(s).")
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
            providers=_providers(context),
            org=context.settings.org.model_dump(),
            limits=context.settings.rendering,
        )
        if problems:
            for problem in problems:
                err_console.print(f"[red]{escape(str(problem))}[/]", highlight=False)
            err_console.print(
                f"[bold red]error:[/] {len(problems)} problem(s); nothing was loaded. Fix them and run again."
            )
            raise typer.Exit(1)
        outcomes = [load_bundle(session, b, actor=user.login, clock=context.clock) for b in bundles]
    if as_json:
        print_json([o.__dict__ for o in outcomes])
        return
    print_table(
        "Loaded",
        ["campaign", "version", "status", "hash", "superseded"],
        [
            [o.campaign_id, o.version, o.status, o.content_hash[:12], ", ".join(map(str, o.superseded))]
            for o in outcomes
        ],
    )


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
        "Campaigns",
        ["id", "title", "state", "version", "version status", "next"],
        [list(r.values()) for r in rows],
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
            session, get_version(session, campaign_id, version), context.settings, samples=samples
        )
    if as_json:
        print_json(result.as_dict())
        return
    console.print(
        f"[bold]{result.campaign_id}[/] version {result.version} ({result.status}), content hash "
        f"[cyan]{result.content_hash[:16]}[/]\nAudience: {result.audience_contacts} contacts, "
        f"{result.reached_contacts} reached on at least one channel."
    )
    for item in result.channels:
        console.rule(f"{item.channel} via {item.provider} — template {item.template}")
        console.print(f"Recipients: [bold]{item.recipients}[/]")
        for reason, count in item.exclusions.items():
            console.print(f"  excluded: {count} — {reason}")
        if item.channel == Channel.SMS:
            encodings = ", ".join(f"{k}: {v}" for k, v in item.encodings.items()) or "-"
            console.print(
                f"Encoding: {encodings}; parts in total: {item.segments} (max {item.max_segments} per message); "
                f"estimated cost: {item.estimated_cost:,.0f} {item.currency}"
            )
        for sample in item.samples:
            header = f"→ {sample['to']} ({sample['name']})"
            if sample["subject"]:
                header += f"\n  Subject: {sample['subject']}"
            console.print(header, highlight=False)
            console.print("  " + sample["text"].replace("\n", "\n  "), highlight=False, markup=False)


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
        f"[bold]{campaign_id}[/]: version {old} ({data['from']['content_hash'][:12]}) → version {new} "
        f"({data['to']['content_hash'][:12]}); {len(result.files)} file(s) differ."
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


@app.command()
def submit(campaign_id: str = CampaignArgument, reason: str | None = ReasonOption) -> None:
    """Submit the latest draft version for approval."""
    with acting("campaigns.submit") as (context, session, user):
        version = workflow.submit(
            session,
            campaign_id=campaign_id,
            actor=user,
            settings=context.settings,
            clock=context.clock,
            reason=reason,
        )
        summary = (version.number, version.content_hash, version.audience_size, version.required_approvals)
    console.print(
        f"Submitted {campaign_id} version {summary[0]} (hash {summary[1][:12]}) for {summary[2]} recipients; "
        f"needs {summary[3]} approval(s) by someone else."
    )
    if not summary[2]:
        err_console.print(
            f"[bold yellow]warning:[/] version {summary[0]} reaches 0 recipients: nobody would receive it. Check "
            f"the audience section and the imported contacts (`broadcaster campaigns preview {campaign_id}` shows "
            "who is excluded and why).",
            highlight=False,
        )


@app.command()
def approve(
    campaign_id: str = CampaignArgument,
    version: int | None = VersionOption,
    content_hash: str | None = HashOption,
    reason: str | None = ReasonOption,
    keep_pending: bool = typer.Option(
        False,
        "--keep-pending",
        help="Let the runs of older versions finish sending what they still have queued "
        "(by default they stop: their queued messages are cancelled).",
    ),
) -> None:
    """Approve a submitted version (not your own); binds to its content hash.

    Once approved, runs of older versions that still have messages waiting stop, unless --keep-pending."""
    with acting("campaigns.approve") as (context, session, user):
        target = get_version(session, campaign_id, version)
        older = workflow.older_runs(session, campaign_id=campaign_id, version_id=target.id)
        approved = workflow.approve(
            session,
            campaign_id=campaign_id,
            actor=user,
            clock=context.clock,
            version_number=version,
            content_hash=content_hash,
            reason=reason,
            keep_pending=keep_pending,
        )
        status, number, needed, have = (
            approved.status.value,
            approved.number,
            approved.required_approvals,
            len(approved.approvals),
        )
    if status != "approved":
        console.print(
            f"Recorded your approval of {campaign_id} version {number} ({have}/{needed}); a second approver is needed."
        )
        if older.run_ids:
            console.print(
                f"Runs of older versions still have {older.pending} message(s) waiting; they stop when the "
                "approval completes (unless the second approver gives --keep-pending)."
            )
        return
    console.print(f"[green]Approved[/] {campaign_id} version {number}.")
    if not older.run_ids:
        return
    runs = ", ".join(map(str, older.run_ids))
    if keep_pending:
        console.print(
            f"Older versions' runs ({runs}) had {older.pending} message(s) waiting; kept (--keep-pending): "
            "they will still be sent."
        )
    else:
        console.print(
            f"Older versions' runs ({runs}) had {older.pending} message(s) waiting; cancelled, they will not be "
            "sent (--keep-pending lets them finish)."
        )


@app.command()
def reject(
    campaign_id: str = CampaignArgument,
    reason: str = typer.Option(..., "--reason", "-m", help="What must change."),
    version: int | None = VersionOption,
    content_hash: str | None = HashOption,
) -> None:
    """Reject a submitted version, with the reason."""
    with acting("campaigns.approve") as (context, session, user):
        workflow.reject(
            session,
            campaign_id=campaign_id,
            actor=user,
            clock=context.clock,
            reason=reason,
            version_number=version,
            content_hash=content_hash,
        )
    console.print(f"Rejected {campaign_id}.")


@app.command()
def schedule(campaign_id: str = CampaignArgument, reason: str | None = ReasonOption) -> None:
    """Schedule an approved campaign: the engine's tick sends each occurrence by itself."""
    with acting("campaigns.schedule") as (context, session, user):
        campaign = workflow.schedule(
            session, campaign_id=campaign_id, actor=user, clock=context.clock, reason=reason
        )
        when = campaign.next_occurrence_at
    assert when is not None
    console.print(
        f"Scheduled {campaign_id}; next occurrence {local(when):%Y-%m-%d %H:%M} (Asia/Ho_Chi_Minh)."
    )


@app.command()
def pause(campaign_id: str = CampaignArgument, reason: str | None = ReasonOption) -> None:
    """Pause: nothing more is sent from the next window on."""
    with acting("campaigns.pause") as (context, session, user):
        workflow.pause(session, campaign_id=campaign_id, actor=user, clock=context.clock, reason=reason)
    console.print(f"Paused {campaign_id}.")


@app.command()
def resume(campaign_id: str = CampaignArgument, reason: str | None = ReasonOption) -> None:
    """Resume a paused campaign."""
    with acting("campaigns.resume") as (context, session, user):
        campaign = workflow.resume(
            session, campaign_id=campaign_id, actor=user, clock=context.clock, reason=reason
        )
        state_now = campaign.state.value
    console.print(f"Resumed {campaign_id} ({state_now}).")


@app.command()
def cancel(campaign_id: str = CampaignArgument, reason: str | None = ReasonOption) -> None:
    """Cancel for good: queued messages are cancelled; nothing more is sent."""
    with acting("campaigns.cancel") as (context, session, user):
        workflow.cancel(session, campaign_id=campaign_id, actor=user, clock=context.clock, reason=reason)
    console.print(f"Cancelled {campaign_id}.")


@app.command("test-send")
def test_send(
    campaign_id: str = CampaignArgument,
    to: list[str] = typer.Option(..., "--to", help="Phone number or e-mail address; repeat for several."),
    version: int | None = VersionOption,
    as_json: bool = JsonOption,
) -> None:
    """Send the latest (or given) version to test addresses now, before approval, with sample contact data.

    A provider that does not take the message now makes the command fail (exit code 1) with what to check;
    the message is marked failed and is never sent later."""
    from sqlalchemy import select as sa_select

    from broadcaster.db.models import Message
    from broadcaster.outbox.sending import create_test_messages, send_test_messages

    with acting("campaigns.test_send") as (context, session, user):
        test = create_test_messages(
            session,
            campaign_id=campaign_id,
            to=to,
            actor=user,
            settings=context.settings,
            clock=context.clock,
            version_number=version,
        )
    context = load_context()
    try:
        failures = send_test_messages(context, test)
        with context.readers() as session:
            messages = session.scalars(
                sa_select(Message).where(Message.id.in_(test.message_ids)).order_by(Message.id)
            )
            rows = [
                {
                    "id": m.id,
                    "channel": m.channel,
                    "to": m.address,
                    "status": m.status.value,
                    "reason": m.reason,
                    "provider": m.provider,
                }
                for m in messages
            ]
    finally:
        context.close()
    failed = {f.provider for f in failures}
    if as_json:
        print_json(rows)
    else:
        shown = [r for r in rows if r["provider"] not in failed]  # the others get one line each below
        if shown:
            print_table(
                "Test send",
                ["id", "channel", "to", "status", "reason"],
                [[r["id"], r["channel"], r["to"], r["status"], r["reason"]] for r in shown],
            )
    for failure in failures:
        print_error(_provider_failure(context.settings, failure))
    if failures or any(r["status"] not in ("sent", "delivered") for r in rows):
        raise typer.Exit(1)


def _provider_failure(settings: Settings, failure: ProviderFailure) -> str:
    """One line: which provider, where it is, what went wrong and what to check."""
    config = settings.provider(failure.provider)
    options = config.options()
    address = f"{options.get('host', '?')}:{options.get('port', '?')}"
    where = f"{config.type.upper()} {address}"
    if failure.configuration:
        check = f"Check the account settings under [providers.{failure.provider}] in broadcaster.toml"
    else:
        peer = "SMSC" if config.channel == "sms" else "mail relay"
        check = (
            f"Check that the {peer} at {address} is running and reachable from this machine "
            f"(host and port under [providers.{failure.provider}] in broadcaster.toml; "
            "`broadcaster sandbox` runs local ones for a rehearsal)"
        )
    return (
        f"test send via provider {failure.provider} ({where}) failed: {failure.reason}. {check}. "
        "The test message was marked failed and will not be sent later."
    )
