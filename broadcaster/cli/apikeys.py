"""``broadcaster apikeys create|list|revoke``: keys of the REST API (admins only)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Keys of the REST API (/api/v1): create, list, revoke.")
