"""``broadcaster messages``: list the outbox, and settle held, failed or waiting messages (release, retry,
drop), each change audited."""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy import select

from broadcaster import masking
from broadcaster.cli.common import JsonOption, UnmaskedOption, acting, console, print_json, print_table
from broadcaster.clock import local
from broadcaster.db.models import Message
from broadcaster.errors import UserError
from broadcaster.outbox.operator import MessageFilter, Operation, operate
from broadcaster.vocabulary import MessageStatus

LIST_LIMIT = 50


def messages(
    ctx: typer.Context,
    campaign: str | None = typer.Option(None, "--campaign", help="Campaign id."),
    status_filter: MessageStatus | None = typer.Option(None, "--status", help="Only this status."),
    channel: str | None = typer.Option(None, "--channel", help="Only this channel: sms or email."),
    run: int | None = typer.Option(None, "--run", help="Only this run (its id, as status shows it)."),
    limit: int = typer.Option(LIST_LIMIT, help="How many messages to list, newest first."),
    unmasked: bool = UnmaskedOption,
    as_json: bool = JsonOption,
) -> None:
    """List outbox messages (newest first) with their status and reason; or act on them with release, retry
    or drop. Auditors and admins see addresses masked."""
    if ctx.invoked_subcommand is not None:
        listing = (campaign, status_filter, channel, run, unmasked or None, as_json or None)
        if any(value is not None for value in listing) or limit != LIST_LIMIT:
            # Filters given before the subcommand would silently not apply to it.
            raise UserError(
                f"put the options after the subcommand: broadcaster messages {ctx.invoked_subcommand} --campaign …"
            )
        return
    filters = {"campaign": campaign, "status": status_filter, "channel": channel, "run": run, "limit": limit}
    with acting("read", write=unmasked) as (context, session, user):
        mask = masking.must_mask(user, unmasked=unmasked)
        query = select(Message).order_by(Message.id.desc()).limit(limit)
        for column, value in (
            (Message.campaign_id, campaign),
            (Message.status, status_filter),
            (Message.channel, channel),
            (Message.run_id, run),
        ):
            if value is not None:
                query = query.where(column == value)
        rows: list[dict[str, Any]] = [
            {
                "id": m.id,
                "campaign": m.campaign_id,
                "run": m.run_id,
                "kind": m.kind.value,
                "channel": m.channel,
                "address": masking.mask_address(m.address) if mask else m.address,
                "status": m.status.value,
                "hold": m.hold,
                "attempts": m.attempts,
                "reason": masking.mask_text(m.reason) if mask else m.reason,
                "segments": m.segments,
                "not_before": local(m.not_before).isoformat() if m.not_before else None,
                "sent_at": local(m.sent_at).isoformat() if m.sent_at else None,
            }
            for m in session.scalars(query)
        ]
        if unmasked:
            masking.record_unmasked(
                session, actor=user, what="messages", filters=filters, shown=len(rows), clock=context.clock
            )
    if as_json:
        print_json(rows)
        return
    print_table(
        "Messages",
        ["id", "campaign", "channel", "address", "status", "attempts", "reason", "not before", "sent at"],
        [
            [
                r["id"],
                r["campaign"],
                r["channel"],
                r["address"],
                r["status"],
                r["attempts"],
                r["reason"],
                r["not_before"],
                r["sent_at"],
            ]
            for r in rows
        ],
    )


CampaignFilter = typer.Option(None, "--campaign", help="Only messages of this campaign.")
RunFilter = typer.Option(None, "--run", help="Only messages of this run.")
ChannelFilter = typer.Option(None, "--channel", help="Only this channel (sms, email).")
ProviderFilter = typer.Option(None, "--provider", help="Only messages for this provider.")
IdFilter = typer.Option([], "--id", help="Only this message (repeat for several).")
DryRunOption = typer.Option(False, "--dry-run", help="Count the messages it would change; change nothing.")
ReasonOption = typer.Option(
    None, "--reason", "-m", help="Why; kept in the audit trail (required, except with --dry-run)."
)


def _operate(
    operation: Operation, filters: MessageFilter, *, reason: str | None, dry_run: bool, as_json: bool
) -> None:
    with acting("messages.operate") as (context, session, user):
        report = operate(
            session,
            operation=operation,
            filters=filters,
            actor=user,
            reason=reason,
            clock=context.clock,
            dry_run=dry_run,
        )
    if as_json:
        print_json(report.as_dict())
        return
    if dry_run:
        console.print(
            f"Dry run: {operation.value} would change {report.matched} message(s); nothing changed."
        )
    else:
        console.print(f"{operation.value.capitalize()}: {report.changed} message(s) changed (audited).")
    if report.counts:
        print_table(
            None,
            ["status", "channel", "messages"],
            [[status, channel, n] for (status, channel), n in sorted(report.counts.items())],
        )


def release(
    campaign: str | None = CampaignFilter,
    run: int | None = RunFilter,
    channel: str | None = ChannelFilter,
    provider: str | None = ProviderFilter,
    ids: list[int] = IdFilter,
    dry_run: bool = DryRunOption,
    reason: str | None = ReasonOption,
    as_json: bool = JsonOption,
) -> None:
    """Send held unknown messages again: they go back to queued. The provider may already have them, so a
    recipient may get the message twice. Editors and admins; audited."""
    filters = MessageFilter(campaign=campaign, run=run, channel=channel, provider=provider, ids=tuple(ids))
    _operate(Operation.RELEASE, filters, reason=reason, dry_run=dry_run, as_json=as_json)


def retry(
    campaign: str | None = CampaignFilter,
    run: int | None = RunFilter,
    status_filter: MessageStatus | None = typer.Option(
        None, "--status", help="technical_failure or temporary_failure (default: both)."
    ),
    channel: str | None = ChannelFilter,
    provider: str | None = ProviderFilter,
    ids: list[int] = IdFilter,
    dry_run: bool = DryRunOption,
    reason: str | None = ReasonOption,
    as_json: bool = JsonOption,
) -> None:
    """Queue failed messages (technical or temporary failure) again as a fresh attempt. Permanent failures
    (a refused address) are never retried. Editors and admins; audited."""
    filters = MessageFilter(
        campaign=campaign, run=run, status=status_filter, channel=channel, provider=provider, ids=tuple(ids)
    )
    _operate(Operation.RETRY, filters, reason=reason, dry_run=dry_run, as_json=as_json)


def drop(
    campaign: str | None = CampaignFilter,
    run: int | None = RunFilter,
    status_filter: MessageStatus | None = typer.Option(
        None, "--status", help="queued or unknown (default: both; unknown ones are the held ones)."
    ),
    channel: str | None = ChannelFilter,
    provider: str | None = ProviderFilter,
    ids: list[int] = IdFilter,
    dry_run: bool = DryRunOption,
    reason: str | None = ReasonOption,
    as_json: bool = JsonOption,
) -> None:
    """Cancel held, unknown or queued messages: they are never sent, and keep the reason. Editors and
    admins; audited."""
    filters = MessageFilter(
        campaign=campaign, run=run, status=status_filter, channel=channel, provider=provider, ids=tuple(ids)
    )
    _operate(Operation.DROP, filters, reason=reason, dry_run=dry_run, as_json=as_json)


def register(app: typer.Typer) -> None:
    messages_app = typer.Typer()
    messages_app.callback(invoke_without_command=True)(messages)
    for command in (release, retry, drop):
        messages_app.command()(command)
    app.add_typer(messages_app, name="messages")
