"""``broadcaster inbox``: the SMS replies that are not an opt-out keyword, for staff to read and mark handled."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer
from sqlalchemy import select

from broadcaster import audit, masking
from broadcaster.cli.common import JsonOption, acting, console, print_json, print_table
from broadcaster.clock import local
from broadcaster.db.models import InboxReply
from broadcaster.errors import NotFound, StateError
from broadcaster.i18n import gettext as _

app = typer.Typer(help="The staff inbox: SMS replies to read and mark handled.")


@app.callback(invoke_without_command=True)
def list_replies(
    ctx: typer.Context,
    as_json: bool = JsonOption,
    show_all: bool = typer.Option(False, "--all", help="Also the replies already handled."),
) -> None:
    """The replies waiting for staff (oldest first); numbers masked for the roles that see masked data."""
    if ctx.invoked_subcommand is not None:
        return
    with acting("read", write=False) as (_context, session, user):
        mask = masking.must_mask(user, unmasked=False)
        query = select(InboxReply).order_by(InboxReply.id)
        if not show_all:
            query = query.where(InboxReply.handled.is_(False))
        rows = [_as_dict(reply, mask=mask) for reply in session.scalars(query)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(_("No replies waiting.") if not show_all else _("No replies."))
        return
    print_table(
        _("Inbox"),
        [_("ID"), _("Received"), _("From"), _("Text"), _("Handled")],
        [
            [r["id"], f"{local(r['received_at']):%d/%m/%Y %H:%M}", r["from"], r["text"], _handled(r)]
            for r in rows
        ],
    )


@app.command("done")
def done(
    reply_id: int = typer.Argument(..., help="The reply's ID, as `broadcaster inbox` lists it."),
    reason: str = typer.Option(..., "--reason", help="What was done about it (kept in the audit)."),
) -> None:
    """Mark a reply handled; the audit keeps who did it and why."""
    with acting("inbox.handle") as (context, session, user):
        if not reason.strip():
            raise StateError("--reason must say what was done about the reply")
        reply = session.get(InboxReply, reply_id)
        if reply is None:
            raise NotFound(_("no reply %(id)s in the inbox") % {"id": reply_id})
        if reply.handled:
            raise StateError(
                _("reply %(id)s was already handled by %(login)s")
                % {"id": reply_id, "login": reply.handled_by}
            )
        now = context.clock.now()
        reply.handled, reply.handled_at, reply.handled_by = True, now, user.login
        audit.record(
            session,
            actor=user.login,
            action="inbox.done",
            subject_type="inbox_reply",
            subject_id=reply_id,
            at=now,
            reason=reason,
            details={"inbound_id": reply.inbound_id},
        )
    console.print(_("Reply %(reply_id)s marked handled.") % {"reply_id": reply_id}, highlight=False)


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite hands the stored UTC moment back without its zone.
    return moment if moment is None or moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _handled(row: dict[str, Any]) -> str:
    return f"{row['handled_by']}" if row["handled"] else ""


def _as_dict(reply: InboxReply, *, mask: bool) -> dict[str, Any]:
    return {
        "id": reply.id,
        "received_at": _utc(reply.received_at),
        "from": masking.mask_phone(reply.from_number) if mask else reply.from_number,
        "text": masking.mask_text(reply.text) if mask else reply.text,
        "inbound_id": reply.inbound_id,
        "provider": reply.provider,
        "handled": reply.handled,
        "handled_at": _utc(reply.handled_at),
        "handled_by": reply.handled_by,
    }
