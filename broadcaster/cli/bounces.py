"""``broadcaster bounces``: run the inbound SMTP listener for bounces and mailto opt-outs in the foreground;
``bounces list`` shows what it stored (addresses masked unless an admin asks otherwise)."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any

import typer

from broadcaster import masking
from broadcaster.bounces.listener import listener_for
from broadcaster.bounces.listing import STATES, stored_mail
from broadcaster.bounces.routes import Kind, Routes
from broadcaster.cli.common import (
    JsonOption,
    UnmaskedOption,
    acting,
    check_role,
    console,
    load_context,
    print_json,
    print_table,
    record_settings,
)
from broadcaster.clock import local
from broadcaster.errors import UserError
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _

app = typer.Typer(help="Bounces (DSNs) and mailto opt-outs: the inbound SMTP listener and what it stored.")

KINDS = {Kind.BOUNCE.value: N_("bounce"), Kind.UNSUBSCRIBE.value: N_("unsubscribe")}


@app.callback(invoke_without_command=True)
def bounces(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="Address to listen on (default: [bounces] host, 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port to listen on (default: [bounces] port, 2526)."),
) -> None:
    """Run the SMTP listener for the bounce domain and the opt-out mailbox in the foreground. Ctrl-C stops."""
    if ctx.invoked_subcommand is not None:
        return
    check_role("engine.run")
    context = load_context()
    try:
        with context.engine.connect():  # a wrong [database] url fails here, not at the first bounce
            pass
        record_settings(context, "bounces")
        routes = Routes.from_settings(context.settings)
        if not routes:
            raise UserError(
                _(
                    "no e-mail provider has a bounce_domain or unsubscribe_mailto in the settings: "
                    "the listener has no address to receive for"
                )
            )
        listener = listener_for(context, host=host, port=port)
        try:
            listener.start()
        except OSError as exc:
            raise UserError(
                _("cannot open %(host)s:%(port)s ([bounces] host, port): %(error)s")
                % {"host": listener.host, "port": listener.port, "error": exc}
            ) from None
        try:
            console.print(
                _("Receiving mail on %(host)s:%(port)s for: %(routes)s. Ctrl-C stops.")
                % {"host": listener.host, "port": listener.port, "routes": ", ".join(routes.describe())},
                highlight=False,
            )
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            with contextlib.suppress(KeyboardInterrupt):
                while not stop.wait(0.5):  # wake now and then: Ctrl-C reaches the main thread between waits
                    pass
        finally:
            listener.stop()
        console.print(_("The mail listener stopped."))
    finally:
        context.close()


@app.command("list")
def list_bounces(
    unmatched: bool = typer.Option(
        False, "--unmatched", help="Only the bounces that match no message of ours (kept, not dropped)."
    ),
    limit: int = typer.Option(100, min=1, help="How many of the newest mails to show."),
    unmasked: bool = UnmaskedOption,
    as_json: bool = JsonOption,
) -> None:
    """The mails the listener stored, newest first: bounces and mailto opt-outs, with what became of them."""
    with acting("read", write=unmasked) as (context, session, user):
        if unmasked:
            masking.must_mask(user, unmasked=True)  # admins only
        rows = stored_mail(session, unmatched=unmatched, limit=limit, mask=not unmasked)
        if unmasked:
            masking.record_unmasked(
                session,
                actor=user,
                what="bounces",
                filters={"unmatched": unmatched, "limit": limit},
                shown=len(rows),
                clock=context.clock,
            )
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(
            _("No unmatched bounce.") if unmatched else _("The mail listener has received no mail yet.")
        )
        return
    print_table(
        _("Mail received"),
        [
            "ID",
            _("Time"),
            _("Kind"),
            _("Provider"),
            _("Original recipient"),
            _("Code"),
            _("Messages"),
            _("Outcome"),
        ],
        [_cells(row) for row in rows],
    )


def _cells(row: dict[str, Any]) -> list[Any]:
    return [
        row["id"],
        f"{local(row['received_at']):%d/%m/%Y %H:%M}",
        _(KINDS[row["kind"]]) if row["kind"] in KINDS else row["kind"],
        row["provider"],
        ", ".join(row["recipients"]) or row["from"],
        ", ".join(row["status"]),
        ", ".join(map(str, row["messages"])),
        STATES.get(row["state"], row["state"]),
    ]
