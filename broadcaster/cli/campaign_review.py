"""``broadcaster campaigns submit|approve|reject|schedule|pause|resume|cancel``: a version through approval."""

from __future__ import annotations

import typer

from broadcaster.campaigns import workflow
from broadcaster.campaigns.store import get_version
from broadcaster.cli.common import CampaignArgument, VersionOption, acting, console, err_console
from broadcaster.clock import local
from broadcaster.i18n import gettext as _
from broadcaster.web.labels import label

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
        _(
            "Submitted %(campaign_id)s version %(value)s (hash %(value2)s) for %(value3)s recipients; needs %(value4)s approval(s) by someone else."
        )
        % {
            "campaign_id": campaign_id,
            "value": summary[0],
            "value2": summary[1][:12],
            "value3": summary[2],
            "value4": summary[3],
        }
    )
    if not summary[2]:
        err_console.print(
            _(
                "[bold yellow]warning:[/] version %(value)s reaches 0 recipients: nobody would receive it. Check the audience section and the imported contacts (`broadcaster campaigns preview %(campaign_id)s` shows who is excluded and why)."
            )
            % {"value": summary[0], "campaign_id": campaign_id},
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
            _(
                "Recorded your approval of %(campaign_id)s version %(number)s (%(have)s/%(needed)s); a second approver is needed."
            )
            % {"campaign_id": campaign_id, "number": number, "have": have, "needed": needed}
        )
        if older.run_ids:
            console.print(
                _(
                    "Runs of older versions still have %(pending)s message(s) waiting; they stop when the approval completes (unless the second approver gives --keep-pending)."
                )
                % {"pending": older.pending}
            )
        return
    console.print(
        _("[green]Approved[/] %(campaign_id)s version %(number)s.")
        % {"campaign_id": campaign_id, "number": number}
    )
    if not older.run_ids:
        return
    runs = ", ".join(map(str, older.run_ids))
    if keep_pending:
        console.print(
            _(
                "Older versions' runs (%(runs)s) had %(pending)s message(s) waiting; kept (--keep-pending): they will still be sent."
            )
            % {"runs": runs, "pending": older.pending}
        )
    else:
        console.print(
            _(
                "Older versions' runs (%(runs)s) had %(pending)s message(s) waiting; cancelled, they will not be sent (--keep-pending lets them finish)."
            )
            % {"runs": runs, "pending": older.pending}
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
    console.print(_("Rejected %(campaign_id)s.") % {"campaign_id": campaign_id})


def schedule(campaign_id: str = CampaignArgument, reason: str | None = ReasonOption) -> None:
    """Schedule an approved campaign: the engine's tick sends each occurrence by itself."""
    with acting("campaigns.schedule") as (context, session, user):
        campaign = workflow.schedule(
            session, campaign_id=campaign_id, actor=user, clock=context.clock, reason=reason
        )
        when = campaign.next_occurrence_at
    assert when is not None
    console.print(
        _("Scheduled %(campaign_id)s; next occurrence %(local)s (Asia/Ho_Chi_Minh).")
        % {"campaign_id": campaign_id, "local": f"{local(when):%Y-%m-%d %H:%M}"}
    )


def pause(campaign_id: str = CampaignArgument, reason: str | None = ReasonOption) -> None:
    """Pause: nothing more is sent from the next window on."""
    with acting("campaigns.pause") as (context, session, user):
        workflow.pause(session, campaign_id=campaign_id, actor=user, clock=context.clock, reason=reason)
    console.print(_("Paused %(campaign_id)s.") % {"campaign_id": campaign_id})


def resume(campaign_id: str = CampaignArgument, reason: str | None = ReasonOption) -> None:
    """Resume a paused campaign."""
    with acting("campaigns.resume") as (context, session, user):
        campaign = workflow.resume(
            session, campaign_id=campaign_id, actor=user, clock=context.clock, reason=reason
        )
        state_now = label(campaign.state.value, "campaign_state")
    console.print(
        _("Resumed %(campaign_id)s (%(state_now)s).") % {"campaign_id": campaign_id, "state_now": state_now}
    )


def cancel(campaign_id: str = CampaignArgument, reason: str | None = ReasonOption) -> None:
    """Cancel for good: queued messages are cancelled; nothing more is sent."""
    with acting("campaigns.cancel") as (context, session, user):
        workflow.cancel(session, campaign_id=campaign_id, actor=user, clock=context.clock, reason=reason)
    console.print(_("Cancelled %(campaign_id)s.") % {"campaign_id": campaign_id})
