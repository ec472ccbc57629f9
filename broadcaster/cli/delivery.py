"""Sending: ``send`` and the progress it shows while it waits; registers the engine's commands in help order.

The other commands have modules of their own in ``broadcaster.cli``: ``status``, ``messages``, ``demo``, and
``engine_processes`` (``run``, ``worker``, ``beat``, ``sandbox``).
"""

from __future__ import annotations

import contextlib
import sys

import typer

from broadcaster.cli import demo as demo_cli
from broadcaster.cli import engine_processes
from broadcaster.cli import messages as messages_cli
from broadcaster.cli import status as status_cli
from broadcaster.cli.common import (
    CampaignArgument,
    JsonOption,
    acting,
    broker_unreachable,
    console,
    fail,
    first_line,
    load_context,
    print_json,
    state,
)
from broadcaster.cli.deployment import queued_line
from broadcaster.cli.status import print_counts
from broadcaster.context import AppContext
from broadcaster.db.models import CampaignRun
from broadcaster.i18n import gettext as _
from broadcaster.outbox.sending import start_manual_run
from broadcaster.progress import send_window_note, wait_for_run
from broadcaster.runtime import EmbeddedEngine
from broadcaster.settings import find_config
from broadcaster.status import run_counts
from broadcaster.tasks import CeleryEnqueuer, configure
from broadcaster.vocabulary import MessageStatus, RunStatus
from broadcaster.web.labels import label

# `send --wait --no-wait-window` outside the campaign's send window: the run is queued, nothing was sent.
EXIT_OUTSIDE_WINDOW = 3


def register(app: typer.Typer) -> None:
    app.command()(status_cli.status)
    app.command()(send)
    messages_cli.register(app)
    app.command()(engine_processes.run)
    app.command()(engine_processes.worker)
    app.command()(engine_processes.beat)
    app.command()(engine_processes.sandbox)
    app.command()(demo_cli.demo)


def send(
    campaign_id: str = CampaignArgument,
    wait: bool = typer.Option(False, "--wait", help="Start the embedded engine here and wait until sent."),
    no_wait_window: bool = typer.Option(
        False,
        "--no-wait-window",
        help=f"With --wait, outside the campaign's send window: do not wait for it to open; the run stays "
        f"queued for the workers (broadcaster run) and the command exits with code {EXIT_OUTSIDE_WINDOW}.",
    ),
    receipt_timeout: float = typer.Option(30.0, help="With --wait: how long to wait for SMS receipts."),
    again: bool = typer.Option(
        False,
        "--again",
        help="Send a one-off campaign that already went out once more, to everyone (audited).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Send the approved version of a campaign now (one run). A one-off campaign goes out once unless --again."""
    with acting("campaigns.send") as (acting_context, session, user):
        run_id = start_manual_run(
            session, campaign_id=campaign_id, actor=user, clock=acting_context.clock, again=again
        )
    context = load_context()
    try:
        configure(context.settings)
        _ask_for_planning(context, run_id)
        closed = send_window_note(context, run_id)
        if closed and not as_json:  # said at once, and kept on the progress line while waiting
            console.print(_("[yellow]Run %(run_id)s: %(closed)s.[/]") % {"run_id": run_id, "closed": closed})
        if not wait:
            if as_json:
                print_json({"run_id": run_id, "status": "queued", "outside_send_window": closed})
            else:
                console.print(queued_line(context.settings, run_id))
            return
        if closed and no_wait_window:
            if as_json:
                print_json({"run_id": run_id, "outside_send_window": closed})
            else:
                console.print(queued_line(context.settings, run_id, window_closed=True))
            raise typer.Exit(EXIT_OUTSIDE_WINDOW)
        # With --json, stdout holds only the JSON: the progress goes to stderr.
        progress_out = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
        with (
            progress_out,
            EmbeddedEngine(
                context, config=find_config(state.config), log_dir=context.settings.path("logs")
            ) as engine,
        ):
            wait_for_run(engine, run_id, console=console, receipt_timeout=receipt_timeout)
        with context.sessions() as session:
            counts = run_counts(session, run_id)
            run_status = session.get(CampaignRun, run_id)
            status_value = run_status.status.value if run_status is not None else None
        if as_json:
            print_json({"run_id": run_id, "status": status_value, "messages": counts})
        else:
            print_counts(_("Run %(run_id)s") % {"run_id": run_id}, counts)
            held = sum(per.get(MessageStatus.UNKNOWN.value, 0) for per in counts.values())
            if status_value == RunStatus.COMPLETED_WITH_HELD.value:
                console.print(
                    _(
                        "[yellow]Run %(run_id)s %(status_value)s: %(held)s message(s) held as unknown (the provider may have them). Settle them with `broadcaster messages release --run %(run_id)s` (sent again, perhaps twice) or `broadcaster messages drop --run %(run_id)s`.[/]"
                    )
                    % {"run_id": run_id, "status_value": label(status_value, "run_status"), "held": held},
                    highlight=False,
                )
    finally:
        context.close()


def _ask_for_planning(context: AppContext, run_id: int) -> None:
    """Publish the run's plan task. The run is already recorded: when the broker is out of reach, say so and
    that the tick asks for it again once the broker answers (``outbox.scheduler``, stalled plans)."""
    try:
        CeleryEnqueuer().plan_run(run_id)
    except Exception as exc:
        if not broker_unreachable(exc):
            raise
        fail(
            _(
                "run %(run_id)s is recorded but its planning task did not reach the broker (%(reason)s); the "
                "tick (beat, or `broadcaster run`) asks for it again %(seconds)s s after it started once the "
                "broker answers. Check [broker] url and `broadcaster health --only broker`"
            )
            % {
                "run_id": run_id,
                "reason": first_line(exc),
                "seconds": f"{context.settings.delivery.plan_stalled_seconds:g}",
            }
        )
