"""The engine's long-running commands: ``run`` (workers and the tick here), ``worker``, ``beat``, ``sandbox``."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import typer

from broadcaster.bounces.listener import listener_for
from broadcaster.cli.common import (
    check_role,
    console,
    load_context,
    record_settings,
    state,
)
from broadcaster.clock import local
from broadcaster.context import AppContext
from broadcaster.db.engine import database_exists
from broadcaster.errors import UserError
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _
from broadcaster.outbox.handback import hand_back_dead_of_this_host
from broadcaster.outbox.scheduler import TickReport
from broadcaster.runtime import (
    EmbeddedEngine,
    worker_command,
    worker_env,
    worker_specs,
)
from broadcaster.settings import find_config, load_settings
from broadcaster.tasks import CeleryEnqueuer, configure, declare_queues, engine_tick

# `run`: how often the workers are looked at between ticks (a dead one is restarted, its rows handed back).
SUPERVISE_SECONDS = 1.0


def describe_tick(report: TickReport) -> str | None:
    """One readable line for a tick that did something (None when it had nothing to do)."""
    parts: list[str] = []
    if report.runs_created:
        parts.append(_("started run(s) %(runs)s") % {"runs": ", ".join(map(str, report.runs_created))})
    parts.extend(
        _("missed occurrence of %(campaign)s at %(at)s")
        % {"campaign": campaign, "at": f"{local(moment):%H:%M %d/%m/%Y}"}
        for campaign, moment in report.missed
    )
    for count, what in (
        (report.chunks, N_("%(n)s chunk(s) queued for sending")),
        (report.runs_completed, N_("%(n)s run(s) completed")),
        (report.inbound_processed, N_("%(n)s receipt(s) or bounce(s) applied")),
        (report.swept_sending, N_("%(n)s message(s) stuck in sending swept")),
        (report.swept_chunks, N_("%(n)s lost chunk(s) re-queued")),
        (report.retained, N_("%(n)s row(s) of personal data past retention.personal_data_days blanked")),
    ):
        if count:
            parts.append(_(what) % {"n": count})
    return "; ".join(parts) or None


@contextlib.contextmanager
def _bounce_listener(context: AppContext) -> Iterator[None]:
    """The bounce listener next to the workers when ``[bounces] start_with_run`` asks for it."""
    if not context.settings.bounces.start_with_run:
        yield
        return
    listener = listener_for(context)
    try:
        listener.start()
    except OSError as exc:
        raise UserError(
            _("cannot open the mail listener on %(host)s:%(port)s ([bounces] host, port): %(error)s")
            % {"host": listener.host, "port": listener.port, "error": exc}
        ) from None
    console.print(
        _("Receiving bounces on %(host)s:%(port)s.") % {"host": listener.host, "port": listener.port},
        highlight=False,
    )
    try:
        yield
    finally:
        listener.stop()


def run(
    once: bool = typer.Option(False, help="One tick, then stop (workers are not started)."),
) -> None:
    """Run the engine on this machine: workers and the tick, so scheduled campaigns go out by themselves."""
    check_role("engine.run")
    context = load_context()
    try:
        if once:
            configure(context.settings)
            report = engine_tick(
                context.sessions, settings=context.settings, clock=context.clock, enqueuer=CeleryEnqueuer()
            )
            done = describe_tick(report) or _("nothing to do")  # outside the f-string: babel finds it there
            console.print(f"{time.strftime('%H:%M:%S')} {done}")
            return
        record_settings(context, "run")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with (
            EmbeddedEngine(
                context, config=find_config(state.config), log_dir=context.settings.path("logs")
            ) as engine,
            _bounce_listener(context),
        ):
            console.print(
                _("Engine running (%(count)s workers); tick every %(tick_seconds)s s. Ctrl-C stops.")
                % {
                    "count": len(engine.processes),
                    "tick_seconds": f"{context.settings.delivery.tick_seconds:.0f}",
                }
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
        console.print(_("Engine stopped."))
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

    check_role("engine.run")
    context = load_context()
    try:
        with context.engine.connect():  # a wrong [database] url fails here, not in every task later
            pass
        record_settings(context, "worker")  # the same pid runs celery after the exec below
        _hand_back_dead_workers(context)
        specs = worker_specs(context.settings)
    finally:
        context.close()
    if gateway is not None:
        chosen = next((s for s in specs if gateway in s.gateways), None)
        if chosen is None:
            raise UserError(
                _("%(gateway)s is not an SMPP provider in the settings") % {"gateway": repr(gateway)}
            )
    else:
        chosen = specs[0]
        if queues is not None:
            chosen = replace(
                chosen, name="worker", queues=tuple(q.strip() for q in queues.split(",") if q.strip())
            )
        if concurrency is not None:
            chosen = replace(chosen, concurrency=concurrency)
    declare_queues(context.settings, chosen.queues)  # two workers may start at one instant on SQLite
    command = worker_command(chosen, loglevel="INFO")
    # Our own interpreter running celery, with arguments built by worker_command: no shell, nothing untrusted.
    os.execvpe(command[0], command, worker_env(chosen, find_config(state.config).resolve(), embedded=False))  # noqa: S606


def _hand_back_dead_workers(context: AppContext) -> None:
    """A worker restarted after a crash (``kill -9``, a restart policy) hands back at once what the dead
    processes of this machine held, instead of leaving their rows to the stuck sweeper."""
    with context.sessions.begin() as session:
        handed = hand_back_dead_of_this_host(session, now=context.clock.now())
    for worker, report in handed.items():
        console.print(
            _("worker process %(pid)s died; %(handed)s")
            % {"pid": worker.rpartition(":")[2], "handed": report.describe()},
            highlight=False,
        )


def beat() -> None:
    """Run the tick every delivery.tick_seconds (exactly one per installation)."""
    check_role("engine.run")
    context: AppContext = load_context()
    configure(context.settings)
    try:
        record_settings(context, "beat")
        while True:
            report = engine_tick(
                context.sessions, settings=context.settings, clock=context.clock, enqueuer=CeleryEnqueuer()
            )
            if report.runs_created or report.chunks or report.missed or report.retained:
                console.print(f"{time.strftime('%H:%M:%S')} {describe_tick(report)}")
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
    """Run the local SMTP server and SMSC on the ports the providers point to, and the push and social
    peers of the providers whose endpoint is a local http:// URL, to rehearse a campaign.

    Ctrl-C (or SIGTERM) stops them cleanly."""
    from dataclasses import replace

    from broadcaster.sandbox import Sandbox, http_providers, ports_from_settings

    settings = load_settings(state.config)  # the sandbox needs no database…
    if database_exists(settings.database_url):
        check_role("engine.run")  # …but where there is one, its roles apply: an auditor starts no server
    target = folder or settings.path(settings.sandbox_dir)
    configured = ports_from_settings(settings)
    ports = replace(configured, smtp=smtp_port or configured.smtp, smpp=smpp_port or configured.smpp)
    with Sandbox(target, ports=ports, providers=http_providers(settings)) as running:
        console.print(
            _(
                "Sandbox SMTP on 127.0.0.1:%(smtp)s, SMSC on 127.0.0.1:%(smpp)s; keeping what arrives in %(target)s. Ctrl-C stops."
            )
            % {"smtp": ports.smtp, "smpp": ports.smpp, "target": target}
        )
        for provider, peer in running.peers.items():
            console.print(
                _("Sandbox peer of provider %(name)s on %(url)s.") % {"name": provider, "url": peer.url},
                highlight=False,
            )
        for name, port, wanted in (
            (configured.smtp_provider, configured.smtp, ports.smtp),
            (configured.smpp_provider, configured.smpp, ports.smpp),
        ):
            if name and port != wanted:
                console.print(
                    _(
                        "[yellow]Provider %(name)s points at port %(port)s: set port = %(wanted)s under \\[providers.%(name)s] for the engine to send here.[/]"
                    )
                    % {"name": name, "port": port, "wanted": wanted}
                )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())  # a clean stop for kill and service managers too
        with contextlib.suppress(KeyboardInterrupt):
            # Wake up now and then: a signal caught by another thread (smpp34's) runs its handler only when
            # the main thread runs Python again.
            while not stop.wait(0.5):
                pass
