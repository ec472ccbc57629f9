"""Sending and watching: ``send``, ``status``, ``messages``, ``run``, ``worker``, ``sandbox``, ``demo``."""

from __future__ import annotations

import typer

from broadcaster.cli.common import JsonOption, acting, console, print_json, print_table
from broadcaster.status import campaign_status


def status(campaign_id: str, as_json: bool = JsonOption) -> None:
    """A campaign's state, versions and approvals, runs, and message counts by channel and status."""
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
    statuses = sorted({s for counts in data["messages"].values() for s in counts})
    if statuses:
        print_table(
            "Messages",
            ["channel", *statuses],
            [
                [channel, *(counts.get(s, 0) for s in statuses)]
                for channel, counts in data["messages"].items()
            ],
        )


def register(app: typer.Typer) -> None:
    app.command()(status)
