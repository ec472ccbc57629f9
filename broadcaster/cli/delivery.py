"""Sending and watching: ``send``, ``status``, ``run``, ``worker``, ``beat``, ``sandbox`` (``messages`` is
in ``broadcaster.cli.messages``)."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

import typer

from broadcaster.cli import messages as messages_cli
from broadcaster.cli.common import (
    CampaignArgument,
    JsonOption,
    acting,
    console,
    load_context,
    print_json,
    print_table,
    state,
)
from broadcaster.clock import local
from broadcaster.context import AppContext
from broadcaster.db.models import CampaignRun
from broadcaster.errors import UserError
from broadcaster.outbox.scheduler import TickReport
from broadcaster.outbox.sending import start_manual_run
from broadcaster.progress import send_window_note, wait_for_run
from broadcaster.runtime import EmbeddedEngine, worker_command, worker_env, worker_specs
from broadcaster.settings import find_config, load_settings
from broadcaster.status import campaign_status, message_counts
from broadcaster.tasks import CeleryEnqueuer, configure
from broadcaster.vocabulary import MessageStatus, RunStatus

# `send --wait --no-wait-window` outside the campaign's send window: the run is queued, nothing was sent.
EXIT_OUTSIDE_WINDOW = 3
# `run`: how often the workers are looked at between ticks (a dead one is restarted, its rows handed back).
SUPERVISE_SECONDS = 1.0


def status(campaign_id: str = CampaignArgument, as_json: bool = JsonOption) -> None:
    """A campaign's state, versions and approvals, runs, and message counts by channel and status
    (test sends apart)."""
    with acting("read", write=False) as (_context, session, _user):
        data = campaign_status(session, campaign_id)
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]{data['id']}[/] — {data['title']}")
    line = f"State: [bold]{data['state']}[/]; approved version: {data['approved_version'] or '-'}"
    if data["paused_reason"]:
        line += f"; paused: {data['paused_reason']}"
    if data["next_occurrence_at"]:
        line += f"; next occurrence: {data['next_occurrence_at']}"
    console.print(line)
    print_table(
        "Versions",
        ["version", "status", "hash", "created by", "submitted by", "audience", "decisions"],
        [
            [
                v["number"],
                v["status"],
                v["content_hash"][:12],
                v["created_by"],
                v["submitted_by"],
                v["audience_size"],
                "; ".join(f"{d['decision']} by {d['by']}" for d in v["decisions"]),
            ]
            for v in data["versions"]
        ],
    )
    if data["runs"]:
        print_table(
            "Runs",
            ["run", "trigger", "occurrence", "status", "planned", "messages", "ended reason"],
            [
                [
                    r["id"],
                    r["trigger"],
                    r["occurrence_at"][:16].replace("T", " "),  # local time, to the minute
                    r["status"],
                    r["planned_messages"],
                    _count_summary(r["messages"]),
                    r["ended_reason"],
                ]
                for r in data["runs"]
            ],
        )
    print_counts("Messages", data["messages"])
    print_counts("Test sends (not counted above)", data["test_sends"])


def _count_summary(counts: dict[str, dict[str, int]]) -> str:
    """'sms: 9 delivered, 1 suppressed; email: 10 sent' for one run's counts."""
    return "; ".join(
        f"{channel}: " + ", ".join(f"{n} {status}" for status, n in sorted(per.items()))
        for channel, per in sorted(counts.items())
    )


def print_counts(title: str, counts: dict[str, dict[str, int]]) -> None:
    statuses = sorted({s for per_channel in counts.values() for s in per_channel})
    if statuses:
        print_table(
            title,
            ["channel", *statuses],
            [[channel, *(per.get(s, 0) for s in statuses)] for channel, per in counts.items()],
        )


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
        CeleryEnqueuer().plan_run(run_id)
        closed = send_window_note(context, run_id)
        if closed and not as_json:  # said at once, and kept on the progress line while waiting
            console.print(f"[yellow]Run {run_id}: {closed}.[/]")
        if not wait:
            if as_json:
                print_json({"run_id": run_id, "status": "queued", "outside_send_window": closed})
            else:
                console.print(f"Run {run_id} queued; workers (`broadcaster run`) will send it.")
            return
        if closed and no_wait_window:
            if as_json:
                print_json({"run_id": run_id, "outside_send_window": closed})
            else:
                console.print(f"Run {run_id} stays queued; `broadcaster run` sends it when the window opens.")
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
            counts = message_counts(session, run_id=run_id)
            run_status = session.get(CampaignRun, run_id)
            status_value = run_status.status.value if run_status is not None else None
        if as_json:
            print_json({"run_id": run_id, "status": status_value, "messages": counts})
        else:
            print_counts(f"Run {run_id}", counts)
            held = sum(per.get(MessageStatus.UNKNOWN.value, 0) for per in counts.values())
            if status_value == RunStatus.COMPLETED_WITH_HELD.value:
                console.print(
                    f"[yellow]Run {run_id} {status_value}: {held} message(s) held as unknown (the provider may "
                    f"have them). Settle them with `broadcaster messages release --run {run_id}` (sent again, "
                    f"perhaps twice) or `broadcaster messages drop --run {run_id}`.[/]",
                    highlight=False,
                )
    finally:
        context.close()


def describe_tick(report: TickReport) -> str | None:
    """One readable line for a tick that did something (None when it had nothing to do)."""
    parts: list[str] = []
    if report.runs_created:
        parts.append("started run(s) " + ", ".join(map(str, report.runs_created)))
    parts.extend(
        f"missed occurrence of {campaign} at {local(moment):%H:%M %d/%m/%Y}"
        for campaign, moment in report.missed
    )
    for count, what in (
        (report.chunks, "chunk(s) queued for sending"),
        (report.runs_completed, "run(s) completed"),
        (report.inbound_processed, "receipt(s) or bounce(s) applied"),
        (report.swept_sending, "message(s) stuck in sending swept"),
        (report.swept_chunks, "lost chunk(s) re-queued"),
    ):
        if count:
            parts.append(f"{count} {what}")
    return "; ".join(parts) or None


def run(
    once: bool = typer.Option(False, help="One tick, then stop (workers are not started)."),
) -> None:
    """Run the engine on this machine: workers and the tick, so scheduled campaigns go out by themselves."""
    with acting("engine.run", write=False):
        pass
    context = load_context()
    try:
        if once:
            configure(context.settings)
            from broadcaster.outbox.scheduler import tick

            report = tick(
                context.sessions, settings=context.settings, clock=context.clock, enqueuer=CeleryEnqueuer()
            )
            console.print(f"{time.strftime('%H:%M:%S')} {describe_tick(report) or 'nothing to do'}")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with EmbeddedEngine(
            context, config=find_config(state.config), log_dir=context.settings.path("logs")
        ) as engine:
            console.print(
                f"Engine running ({len(engine.processes)} workers); tick every {context.settings.delivery.tick_seconds:.0f} s. Ctrl-C stops."
            )
            try:
                next_tick = 0.0
                while not stop.is_set():
                    line = None
                    if time.monotonic() >= next_tick:
                        line = describe_tick(engine.tick())
                        next_tick = time.monotonic() + context.settings.delivery.tick_seconds
                    else:  # between ticks, a dead worker is still restarted and handed back at once
                        engine.check_workers()
                    for notice in [*engine.take_notices(), *([line] if line else [])]:
                        console.print(f"{time.strftime('%H:%M:%S')} {notice}", highlight=False)
                    stop.wait(min(SUPERVISE_SECONDS, context.settings.delivery.tick_seconds))
            except KeyboardInterrupt:
                pass
        console.print("Engine stopped.")
    finally:
        context.close()


def worker(
    queues: str | None = typer.Option(
        None, "--queues", "-Q", help="Comma-separated queues (default: the main worker's)."
    ),
    gateway: str | None = typer.Option(
        None, help="Run the gateway worker of this SMPP provider (it binds at start)."
    ),
    concurrency: int | None = typer.Option(
        None, help="Processes for a non-gateway worker (default: cores, max 4)."
    ),
) -> None:
    """Run one Celery worker in the foreground (distributed deployments): the main one, or an SMPP gateway."""
    from dataclasses import replace

    context = load_context()
    try:
        with context.engine.connect():  # a wrong [database] url fails here, not in every task later
            pass
        specs = worker_specs(context.settings)
    finally:
        context.close()
    if gateway is not None:
        chosen = next((s for s in specs if gateway in s.gateways), None)
        if chosen is None:
            raise UserError(f"{gateway!r} is not an SMPP provider in the settings")
    else:
        chosen = specs[0]
        if queues is not None:
            chosen = replace(
                chosen, name="worker", queues=tuple(q.strip() for q in queues.split(",") if q.strip())
            )
        if concurrency is not None:
            chosen = replace(chosen, concurrency=concurrency)
    command = worker_command(chosen, loglevel="INFO")
    os.execvpe(command[0], command, worker_env(chosen, find_config(state.config).resolve(), embedded=False))


def beat() -> None:
    """Run the tick every delivery.tick_seconds (exactly one per installation)."""
    context: AppContext = load_context()
    configure(context.settings)
    from broadcaster.outbox.scheduler import tick

    try:
        while True:
            report = tick(
                context.sessions, settings=context.settings, clock=context.clock, enqueuer=CeleryEnqueuer()
            )
            if report.runs_created or report.chunks or report.missed:
                console.print(f"{time.strftime('%H:%M:%S')} {report}")
            time.sleep(context.settings.delivery.tick_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        context.close()


def sandbox(
    folder: Path | None = typer.Option(
        None, help="Where received mail and SMS are kept (default: sandbox/)."
    ),
    smtp_port: int | None = typer.Option(
        None, "--smtp-port", help="Port of the SMTP server (default: the port of the first SMTP provider)."
    ),
    smpp_port: int | None = typer.Option(
        None, "--smpp-port", help="Port of the SMSC (default: the port of the first SMPP provider)."
    ),
) -> None:
    """Run the local SMTP server and SMSC on the ports the providers point to, to rehearse a campaign.

    Ctrl-C (or SIGTERM) stops both servers cleanly."""
    from dataclasses import replace

    from broadcaster.sandbox import Sandbox, ports_from_settings

    settings = load_settings(state.config)  # the sandbox needs no database
    target = folder or settings.path(settings.sandbox_dir)
    configured = ports_from_settings(settings)
    ports = replace(configured, smtp=smtp_port or configured.smtp, smpp=smpp_port or configured.smpp)
    with Sandbox(target, ports=ports):
        console.print(
            f"Sandbox SMTP on 127.0.0.1:{ports.smtp}, SMSC on 127.0.0.1:{ports.smpp}; keeping what arrives in {target}. Ctrl-C stops."
        )
        for name, port, wanted in (
            (configured.smtp_provider, configured.smtp, ports.smtp),
            (configured.smpp_provider, configured.smpp, ports.smpp),
        ):
            if name and port != wanted:
                console.print(
                    f"[yellow]Provider {name} points at port {port}: set port = {wanted} under "
                    f"\\[providers.{name}] for the engine to send here.[/]"
                )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())  # a clean stop for kill and service managers too
        with contextlib.suppress(KeyboardInterrupt):
            # Wake up now and then: a signal caught by another thread (smpp34's) runs its handler only when
            # the main thread runs Python again.
            while not stop.wait(0.5):
                pass


def register(app: typer.Typer) -> None:
    app.command()(status)
    app.command()(send)
    messages_cli.register(app)
    app.command()(run)
    app.command()(worker)
    app.command()(beat)
    app.command()(sandbox)
    app.command()(demo)


def demo(
    directory: Path = typer.Option(Path("demo-workdir"), "--dir", help="Working directory to (re)create."),
    contacts: int = typer.Option(2000, help="How many contacts to generate."),
) -> None:
    """Run the whole path on this machine against sandbox servers, and print what happened."""
    from broadcaster.demo import run_demo

    result = run_demo(directory, contacts=contacts, console=console)
    console.rule("5. Result")
    rows = []
    for channel, counts in sorted(result.counts.items()):
        failed = sum(v for k, v in counts.items() if k.endswith("failure"))
        rows.append(
            [
                channel,
                counts.get("sent", 0) + counts.get("delivered", 0),
                counts.get("delivered", 0),
                failed,
                counts.get("suppressed", 0),
                counts.get("unknown", 0),
            ]
        )
    print_table(
        f"Run {result.run_id} per channel",
        ["channel", "sent", "delivered", "failed", "suppressed", "unknown"],
        rows,
    )
    console.print(
        "E-mail is 'sent' when the relay accepted it; SMS is 'delivered' when every part's receipt said DELIVRD."
    )
    console.print(
        f"The sandbox SMTP server kept {result.mails_received} mails in {result.sandbox / 'mail'} (one .eml each)."
    )
    console.print(
        f"The sandbox SMSC received {result.sms_parts_received} SMS parts: {result.sandbox / 'sms' / 'sms.jsonl'} (one JSON line each)."
    )
    console.print("Explore it as the approver (or the editor, BROADCASTER_USER=bientap):")
    # One unwrapped line, pasteable from anywhere: absolute paths, because the venv is not on PATH after
    # `make demo`, and the demo's own user, because your OS login is not one of the demo's users.
    console.print(demo_hint(directory, Path(sys.argv[0])), soft_wrap=True, highlight=False, markup=False)


def demo_hint(directory: Path, program: Path) -> str:
    """The closing command of the demo: the campaign's status, read as the demo's approver."""
    from broadcaster.demo import APPROVER, DEMO_CAMPAIGN

    return (
        f"cd {shlex.quote(str(directory.resolve()))} && BROADCASTER_USER={APPROVER} "
        f"{shlex.quote(str(program.resolve()))} status {DEMO_CAMPAIGN}"
    )
