"""``broadcaster messages``: list the outbox, and settle held, failed or waiting messages (release, retry,
drop), each change audited."""

from __future__ import annotations

from pathlib import Path

import typer

from broadcaster import masking
from broadcaster.cli.common import (
    ExportOutOption,
    FromOption,
    JsonOption,
    ToOption,
    UnmaskedOption,
    acting,
    console,
    local_period,
    print_json,
    print_table,
    write_export,
)
from broadcaster.errors import UserError
from broadcaster.history.export import WRITERS, ExportFormat, row_dict
from broadcaster.history.filters import HistoryFilter, PeriodOn, recipient
from broadcaster.history.query import HistoryRow, iter_history
from broadcaster.i18n import gettext as _
from broadcaster.outbox.operator import MessageFilter, Operation, operate
from broadcaster.vocabulary import MessageStatus
from broadcaster.web.labels import label

LIST_LIMIT = 50


def messages(
    ctx: typer.Context,
    campaign: str | None = typer.Option(None, "--campaign", help="Campaign id."),
    statuses: list[MessageStatus] = typer.Option(
        [], "--status", help="Only this status (repeat for several)."
    ),
    channel: str | None = typer.Option(None, "--channel", help="Only this channel: sms or email."),
    run: int | None = typer.Option(None, "--run", help="Only this run (its id, as status shows it)."),
    recipient_text: str | None = typer.Option(
        None, "--recipient", help="Only this phone number or e-mail address, in any spelling."
    ),
    period_from: str | None = FromOption,
    period_to: str | None = ToOption,
    period_on: PeriodOn = typer.Option(
        PeriodOn.CREATED, "--period-on", help="Which moment --from/--to bound: created, sent or final."
    ),
    limit: int | None = typer.Option(
        None,
        help=f"How many messages: the table shows the newest ({LIST_LIMIT} by default); exports go oldest "
        "first, all of them unless limited.",
    ),
    output_format: ExportFormat = typer.Option(
        ExportFormat.TABLE,
        "--format",
        help="table, csv (a header row) or jsonl (one message a line, with events).",
    ),
    out: Path | None = ExportOutOption,
    unmasked: bool = UnmaskedOption,
    as_json: bool = JsonOption,
) -> None:
    """List outbox messages with their status, reason and events, or export them (--format csv|jsonl
    --out FILE, streamed); or act on them with release, retry or drop. Auditors and admins see addresses
    masked, and exports are masked for everyone unless an admin asks --unmasked (audited)."""
    if ctx.invoked_subcommand is not None:
        listing = (
            campaign,
            channel,
            run,
            recipient_text,
            period_from,
            period_to,
            limit,
            out,
            unmasked or None,
        )
        if (
            any(value is not None for value in listing)
            or statuses
            or as_json
            or output_format != ExportFormat.TABLE
        ):
            # Filters given before the subcommand would silently not apply to it.
            raise UserError(
                _(
                    "put the options after the subcommand: broadcaster messages %(invoked_subcommand)s --campaign …"
                )
                % {"invoked_subcommand": ctx.invoked_subcommand}
            )
        return
    exporting = output_format != ExportFormat.TABLE
    if out is not None and not exporting:
        raise UserError(_("--out: only with --format csv or --format jsonl"))
    if exporting and as_json:
        raise UserError(_("--json: not with --format csv/jsonl (jsonl is JSON already, one message a line)"))
    if limit is not None and limit < 1:
        raise UserError(_("--limit %(limit)s: must be a positive number") % {"limit": limit})
    start, end = local_period(period_from, period_to)
    filters = HistoryFilter(
        campaign=campaign,
        run=run,
        recipient=recipient(recipient_text) if recipient_text is not None else None,
        statuses=tuple(statuses),
        channel=channel,
        period_from=start,
        period_to=end,
        period_on=period_on,
    )
    with acting("read", write=unmasked) as (context, session, user):
        # A file leaves the installation: masked for every role, unless an admin asks (audited below).
        check = masking.must_mask_export if exporting else masking.must_mask
        mask = check(user, unmasked=unmasked)
        filters = filters.keyed(context.settings.security.erasure_key())
        if exporting:
            rows = iter_history(session, filters, mask=mask, limit=limit)
            shown = write_export(lambda stream: WRITERS[output_format](rows, stream), out)
        else:
            listed = list(
                iter_history(session, filters, mask=mask, newest_first=True, limit=limit or LIST_LIMIT)
            )
            shown = len(listed)
        if unmasked:
            asked = {
                **filters.as_dict(),
                "limit": limit,
                "format": output_format.value,
                "out": str(out) if out else None,
            }
            masking.record_unmasked(
                session, actor=user, what="messages", filters=asked, shown=shown, clock=context.clock
            )
    if exporting:
        if out is not None:
            console.print(
                _("Exported %(count)s message(s) to %(out)s (%(format)s).")
                % {"count": shown, "out": out, "format": output_format.value},
                highlight=False,
            )
        return
    if as_json:
        print_json([row_dict(r) for r in listed])
        return
    _print_listing(listed)


def _print_listing(rows: list[HistoryRow]) -> None:
    print_table(
        _("Messages"),
        [
            _("id"),
            _("campaign"),
            _("channel"),
            _("address"),
            _("status"),
            _("attempts"),
            _("reason"),
            _("not before"),
            _("sent at"),
            _("events"),
        ],
        [
            [
                r["id"],
                r["campaign"],
                r["channel"],
                r["address"],
                label(r["status"], "message_status"),
                r["attempts"],
                r["reason"],
                r["not_before"],
                r["sent_at"],
                len(r["events"]),
            ]
            for r in (row_dict(row) for row in rows)
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
            _("Dry run: %(value)s would change %(matched)s message(s); nothing changed.")
            % {"value": operation.value, "matched": report.matched}
        )
    else:
        console.print(
            _("%(capitalize)s: %(changed)s message(s) changed (audited).")
            % {"capitalize": operation.value.capitalize(), "changed": report.changed}
        )
    if report.counts:
        print_table(
            None,
            [_("status"), _("channel"), _("messages")],
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
