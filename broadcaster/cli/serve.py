"""``broadcaster serve``: runs the web application (staff UI, REST API, opt-out links) on uvicorn in the
foreground."""

from __future__ import annotations

import os

import typer

from broadcaster.cli.common import check_role, console, load_context, record_settings, state
from broadcaster.i18n import gettext as _
from broadcaster.settings import CONFIG_ENV, find_config


def serve(
    host: str | None = typer.Option(None, help="Address to listen on (default: [web] host, 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port to listen on (default: [web] port, 8080)."),
    workers: int | None = typer.Option(
        None, min=1, max=64, help="Worker processes (default: [web] workers, 1; about one per core)."
    ),
) -> None:
    """Run the web application: the staff UI, the REST API (/api/v1) and the opt-out links. Ctrl-C stops."""
    import uvicorn

    from broadcaster.web.app import create_app
    from broadcaster.web.single_writer import WriterProcess

    check_role("engine.run")
    context = load_context()
    writer: WriterProcess | None = None
    try:
        with context.engine.connect():  # a wrong [database] url fails here, not at the first click
            pass
        record_settings(context, "serve")
        web = context.settings.web
        chosen_host, chosen_port = host or web.host, port or web.port
        console.print(
            _("Serving on http://%(chosen_host)s:%(chosen_port)s; Ctrl-C stops.")
            % {"chosen_host": chosen_host, "chosen_port": chosen_port},
            highlight=False,
        )
        processes = workers or web.workers
        config = find_config(state.config).resolve()
        # Several processes each build their own app: uvicorn imports the factory in each, and the factory
        # finds this working directory through BROADCASTER_CONFIG.
        os.environ[CONFIG_ENV] = str(config)
        if processes > 1 and context.engine.dialect.name == "sqlite":
            # SQLite has one writer: the workers hand their single messages to one process that writes them
            # (PostgreSQL takes each worker's writes as they come).
            writer = WriterProcess(config)
            writer.start()
            os.environ.update(writer.environment())
        # uvicorn handles Ctrl-C and SIGTERM itself and returns after a graceful shutdown.
        uvicorn.run(
            create_app(context) if processes == 1 else "broadcaster.web.app:app_from_environment",
            factory=processes > 1,
            workers=processes,
            host=chosen_host,
            port=chosen_port,
            log_level="warning",
            proxy_headers=True,
            forwarded_allow_ips=web.forwarded_allow_ips,
        )
    finally:
        if writer is not None:  # after the workers: their last requests are written
            writer.stop()
        context.close()
