"""``broadcaster audit``: the tamper-evident audit trail (docs/audit.md). The commands live in their own
modules and are registered here."""

from __future__ import annotations

import typer

from broadcaster.cli import audit_chain, audit_search

app = typer.Typer(
    help="The audit trail: check its hash chain, export the daily anchors, search it.", no_args_is_help=True
)

app.command("verify")(audit_chain.verify)
app.command("anchor")(audit_chain.anchor)
app.command("keygen")(audit_chain.keygen)
app.command("search")(audit_search.search)
