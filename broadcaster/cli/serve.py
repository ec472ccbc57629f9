"""``broadcaster serve``: runs the web application (staff UI, REST API, opt-out links) on uvicorn in the
foreground."""

from __future__ import annotations

import typer

from broadcaster.cli.common import check_role, console, load_context, record_settings
from broadcaster.i18n import gettext as _


def serve(
    host: str | None = typer.Option(None, help="Address to listen on (default: [web] host, 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port to listen on (default: [web] port, 8080)."),
) -> None:
    """Run the web application: the staff UI, the REST API (/api/v1) and the opt-out links. Ctrl-C stops."""
    import uvicorn

    from broadcaster.web.app import create_app

    check_role("engine.run")
    context = load_context()
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
        # uvicorn handles Ctrl-C and SIGTERM itself and returns after a graceful shutdown.
        uvicorn.run(
            create_app(context),
            host=chosen_host,
            port=chosen_port,
            log_level="warning",
            proxy_headers=True,
            forwarded_allow_ips=web.forwarded_allow_ips,
        )
    finally:
        context.close()
