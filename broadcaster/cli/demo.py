"""``broadcaster demo``: the whole path on this machine against the sandbox servers, and what happened."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from broadcaster.cli.common import (
    check_role,
    console,
    print_table,
    state,
)
from broadcaster.i18n import gettext as _
from broadcaster.settings import find_config


def demo(
    directory: Path = typer.Option(Path("demo-workdir"), "--dir", help="Working directory to (re)create."),
    contacts: int = typer.Option(2000, help="How many contacts to generate."),
) -> None:
    """Run the whole path on this machine against sandbox servers, and print what happened."""
    from broadcaster.demo import run_demo

    if find_config(state.config).is_file():
        # Inside a working directory its users' roles apply: an auditor starts no demo (servers, files).
        check_role("engine.run")
    result = run_demo(directory, contacts=contacts, console=console)
    console.rule(_("5. Result"))
    for run_id, by_channel in result.runs.items():
        rows = []
        for channel, counts in sorted(by_channel.items()):
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
            _("Run %(run_id)s per channel") % {"run_id": run_id},
            [_("channel"), _("sent"), _("delivered"), _("failed"), _("suppressed"), _("unknown")],
            rows,
        )
    console.print(
        _(
            "E-mail is 'sent' when the relay accepted it; SMS is 'delivered' when every part's receipt said DELIVRD."
        )
    )
    console.print(
        _("The sandbox SMTP server kept %(mails_received)s mails in %(value)s (one .eml each).")
        % {"mails_received": result.mails_received, "value": result.sandbox / "mail"}
    )
    console.print(
        _("The sandbox SMSC received %(sms_parts_received)s SMS parts: %(value)s (one JSON line each).")
        % {"sms_parts_received": result.sms_parts_received, "value": result.sandbox / "sms" / "sms.jsonl"}
    )
    console.print(
        _(
            "The sandbox FCM peer took %(notifications)s push notifications over HTTP/2, the Graph API peer "
            "%(posts)s Page post(s); a person without the city app gets no push (suppressed: no device)."
        )
        % {"notifications": result.notifications_received, "posts": result.posts_received}
    )
    console.print(_("Explore it as the approver (or the editor, BROADCASTER_USER=bientap):"))
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
