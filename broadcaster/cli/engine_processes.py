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

from broadcaster.beat import Beat, guarded_tick
from broadcaster.bounces.listener import listener_for
from broadcaster.cli.common import (
    check_role,
    console,
    load_context,
    record_settings,
    state,
)
from broadcaster.context import AppContext
from broadcaster.db.engine import database_exists
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.outbox.handback import hand_back_dead_of_this_host
from broadcaster.runtime import (
    INBOUND_WORKER,
    EmbeddedEngine,
    worker_command,
    worker_env,
    worker_specs,
)
from broadcaster.settings import find_config, load_settings
from broadcaster.tasks import CeleryEnqueuer, configure, declare_queues, engine_tick

# `run`: how often the workers are looked at between ticks (a dead one is restarted, its rows handed back).
SUPERVISE_SECONDS = 1.0


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
            report, line = guarded_tick(
                lambda: engine_tick(
                    context.sessions,
                    settings=context.settings,
                    clock=context.clock,
                    enqueuer=CeleryEnqueuer(),
                )
            )
            done = line or _("nothing to do")  # outside the f-string: babel finds it there
            console.print(f"{time.strftime('%H:%M:%S')} {done}", highlight=False)
            if report is None:
                raise typer.Exit(1)
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
                        line = guarded_tick(engine.tick)[1]
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
    inbound: bool = typer.Option(
        False, "--inbound", help="Run the worker that applies stored receipts and replies (inbound.* queues)."
    ),
    concurrency: int | None = typer.Option(
        None, help="Processes for a non-gateway worker (default: cores, max 4)."
    ),
) -> None:
    """Run one Celery worker in the foreground (distributed deployments): the main one, an SMPP gateway, or the
    receipts' applier."""
    from dataclasses import replace

    if sum((gateway is not None, inbound, queues is not None)) > 1:
        raise UserError(_("choose one of --gateway, --inbound and --queues: each names a worker's queues"))
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
    elif inbound:
        found = next((s for s in specs if s.name == INBOUND_WORKER), None)
        if found is None:
            raise UserError(
                _("no provider in the settings hands over receipts or replies: no inbound worker to run")
            )
        chosen = found
    else:
        chosen = specs[0]
        if queues is not None:
            chosen = replace(
                chosen, name="worker", queues=tuple(q.strip() for q in queues.split(",") if q.strip())
            )
        if concurrency is not None:
            chosen = replace(chosen, concurrency=concurrency)
    declare_queues(context.settings, chosen.queues)  # two workers may start at one instant on SQLite
    events = context.settings.broker.events_on(context.settings.broker_url)
    command = worker_command(chosen, loglevel="INFO", heartbeat=events)
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
    """Run the tick every delivery.tick_seconds; a second beat of the installation waits and takes over."""
    check_role("engine.run")
    context: AppContext = load_context()
    configure(context.settings)
    try:
        record_settings(context, "beat")
        masked = context.settings.masked()
        console.print(
            _(
                "Beat: the engine's tick every %(tick_seconds)s s (exactly one beat ticks per installation); "
                "database %(database)s, broker %(broker)s. Ctrl-C stops."
            )
            % {
                "tick_seconds": f"{context.settings.delivery.tick_seconds:g}",
                "database": masked["database"]["url"],
                "broker": masked["broker"]["url"],
            },
            highlight=False,
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())

        def say(line: str) -> None:
            console.print(f"{time.strftime('%H:%M:%S')} {line}", highlight=False)

        with contextlib.suppress(KeyboardInterrupt):
            Beat(context, enqueuer=CeleryEnqueuer(), say=say).run(stop)
        console.print(_("Beat stopped."))
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
    host: str = typer.Option(
        "127.0.0.1", help="Address the SMTP server and the SMSC listen on (0.0.0.0 in a container)."
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
    with Sandbox(target, ports=ports, providers=http_providers(settings), host=host) as running:
        console.print(
            _(
                "Sandbox SMTP on %(host)s:%(smtp)s, SMSC on %(host)s:%(smpp)s; keeping what arrives in %(target)s. Ctrl-C stops."
            )
            % {"host": host, "smtp": ports.smtp, "smpp": ports.smpp, "target": target}
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
