"""``broadcaster campaigns submit|approve|reject|schedule|pause|resume|cancel``: a version through approval."""

from __future__ import annotations

import typer

from broadcaster.campaigns import workflow
from broadcaster.campaigns.store import get_version
from broadcaster.cli.common import CampaignArgument, VersionOption, acting, console, err_console
from broadcaster.clock import local

ReasonOption = typer.Option(None, "--reason", "-m", help="Why (kept in the audit log).")
HashOption = typer.Option(
    None,
    "--hash",
    help="Required: the content hash (a prefix of at least 8 characters) of the version you reviewed, as shown "
    "by 'campaigns preview' and 'status'; a version that changed since is refused.",
)


def register(app: typer.Typer) -> None:
    app.command()(submit)
    app.command()(approve)
    app.command()(reject)
    app.command()(schedule)
    app.command()(pause)
    app.command()(resume)
    app.command()(cancel)


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


def pause(campaign_id: str = CampaignArgument, reason: str | None = ReasonOption) -> None:
    """Pause: nothing more is sent from the next window on."""
    with acting("campaigns.pause") as (context, session, user):
        workflow.pause(session, campaign_id=campaign_id, actor=user, clock=context.clock, reason=reason)
    console.print(f"Paused {campaign_id}.")


def resume(campaign_id: str = CampaignArgument, reason: str | None = ReasonOption) -> None:
    """Resume a paused campaign."""
    with acting("campaigns.resume") as (context, session, user):
        campaign = workflow.resume(
            session, campaign_id=campaign_id, actor=user, clock=context.clock, reason=reason
        )
        state_now = campaign.state.value
    console.print(f"Resumed {campaign_id} ({state_now}).")


def cancel(campaign_id: str = CampaignArgument, reason: str | None = ReasonOption) -> None:
    """Cancel for good: queued messages are cancelled; nothing more is sent."""
    with acting("campaigns.cancel") as (context, session, user):
        workflow.cancel(session, campaign_id=campaign_id, actor=user, clock=context.clock, reason=reason)
    console.print(f"Cancelled {campaign_id}.")
