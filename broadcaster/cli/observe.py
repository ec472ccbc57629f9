"""Supervision commands: ``health`` (a container's health check), ``queues`` (the broker's backlog per queue)
and ``metrics`` (Prometheus' /metrics). They need no Broadcaster user: they show no personal data, and a
container or Prometheus runs them under a service account (docs/supervision.md)."""

from __future__ import annotations

import logging
import signal
import threading

import typer
from sqlalchemy.exc import SQLAlchemyError

from broadcaster.cli.common import (
    JsonOption,
    check_role,
    console,
    fail,
    load_context,
    print_json,
    print_table,
)
from broadcaster.i18n import gettext as _
from broadcaster.observe.broker_queues import engine_queues, queue_depths
from broadcaster.observe.health import (
    COMPONENT_LABELS,
    COMPONENTS,
    State,
    parse_components,
    run_checks,
    worst,
)

log = logging.getLogger(__name__)

# `health`: the exit code says the worst state. 1 is what a container health check takes for unhealthy; 2 is
# click's usage error (and reserved by Docker), so degraded is 3 (or 0 with --degraded-ok).
EXIT_UNHEALTHY = 1
EXIT_DEGRADED = 3


def register(app: typer.Typer) -> None:
    app.command()(health)
    app.command()(queues)
    app.command()(metrics)


def _state_label(state: State) -> str:
    labels = {
        State.OK: _("[green]ok[/]"),
        State.DEGRADED: _("[yellow]degraded[/]"),
        State.UNHEALTHY: _("[red]unhealthy[/]"),
    }
    return labels[state]


def health(
    only: str | None = typer.Option(
        None,
        "--only",
        help=f"Comma-separated components to check (default: all): {', '.join(COMPONENTS)}.",
    ),
    degraded_ok: bool = typer.Option(
        False, "--degraded-ok", help=f"Exit 0 when degraded (default: exit {EXIT_DEGRADED})."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Check the database, the broker, each provider, the tick and the backlog. Exit code: 0 healthy,
    1 unhealthy, 3 degraded."""
    try:
        components = parse_components(only)
    except ValueError as exc:
        fail(str(exc), code=2)
    context = load_context()
    try:
        checks = run_checks(context, components)
    finally:
        context.close()
    state = worst(checks)
    if as_json:
        print_json({"state": state.word, "checks": [check.as_dict() for check in checks]})
    else:
        print_table(
            _("Health"),
            [_("component"), _("checked"), _("state"), _("detail")],
            [[_(COMPONENT_LABELS[c.component]), c.name, _state_label(c.state), c.detail] for c in checks],
        )
        console.print(_("Overall: %(state)s") % {"state": _state_label(state)})
    if state is State.UNHEALTHY:
        raise typer.Exit(EXIT_UNHEALTHY)
    if state is State.DEGRADED and not degraded_ok:
        raise typer.Exit(EXIT_DEGRADED)


def queues(as_json: bool = JsonOption) -> None:
    """Tasks waiting in each of the engine's queues, as the broker counts them (ready, delivered but not
    acknowledged, consumers; '-' where the broker does not say)."""
    context = load_context()
    try:
        settings = context.settings
        names = engine_queues(settings)
        try:
            depths = queue_depths(settings, names, timeout=settings.health.probe_timeout_seconds)
        except Exception as exc:  # any broker failure: said in one line, naming the setting
            fail(
                _("cannot read the queues of the broker ([broker] url): %(error)s")
                % {"error": f"{type(exc).__name__}: {exc}"}
            )
    finally:
        context.close()
    if as_json:
        print_json([depth.as_dict() for depth in depths])
        return
    print_table(
        _("Queues"),
        [_("queue"), _("ready"), _("unacked"), _("consumers")],
        [
            [
                d.name,
                *(("-" if v is None else v) for v in (d.ready, d.unacked, d.consumers)),
            ]
            if d.exists
            else [d.name, _("not declared yet"), "-", "-"]
            for d in depths
        ],
    )


def metrics(
    host: str | None = typer.Option(None, help="Address to listen on (default: [metrics] host)."),
    port: int | None = typer.Option(None, help="Port (default: [metrics] port, 9464)."),
    alerts: bool = typer.Option(
        True,
        "--alerts/--no-alerts",
        help="Also evaluate the admins' alerts every [delivery] tick_seconds, so a stopped beat is told.",
    ),
) -> None:
    """Serve Prometheus metrics on http://HOST:PORT/metrics, read from the database at each scrape."""
    from prometheus_client import start_http_server

    from broadcaster.observe.alerts import evaluate_alerts
    from broadcaster.observe.metrics import registry_for

    check_role("engine.run")  # an engine process: it listens on a port and mails the admins' alerts
    context = load_context()
    try:
        with context.engine.connect():  # a wrong [database] url fails here, not at every scrape
            pass
    except BaseException:
        context.close()
        raise
    settings = context.settings.metrics
    address, listen_port = host or settings.host, port or settings.port
    try:
        server, thread = start_http_server(listen_port, addr=address, registry=registry_for(context))
    except OSError as exc:
        context.close()
        fail(
            _("cannot listen on %(host)s:%(port)s ([metrics] host, port): %(error)s")
            % {"host": address, "port": listen_port, "error": exc}
        )
    console.print(
        _("Metrics on http://%(host)s:%(port)s/metrics. Ctrl-C stops.")
        % {"host": address, "port": listen_port},
        highlight=False,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set():
            if alerts:
                try:
                    evaluate_alerts(context)
                except SQLAlchemyError as exc:  # the database is away: the scrape says so; try again later
                    log.warning("alerts not evaluated: %s", exc)
            stop.wait(context.settings.delivery.tick_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        thread.join(timeout=5)
        context.close()
