"""``broadcaster status``: a campaign's state, versions, runs and message counts, as tables or JSON."""

from __future__ import annotations

from broadcaster.cli.common import (
    CampaignArgument,
    JsonOption,
    acting,
    console,
    print_json,
    print_table,
)
from broadcaster.i18n import gettext as _
from broadcaster.status import campaign_status
from broadcaster.web.labels import label


def status(campaign_id: str = CampaignArgument, as_json: bool = JsonOption) -> None:
    """A campaign's state, versions and approvals, runs, and message counts by channel and status
    (test sends apart)."""
    with acting("read", write=False) as (_context, session, _user):
        data = campaign_status(session, campaign_id)
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]{data['id']}[/] — {data['title']}")
    line = _("State: [bold]%(state)s[/]; approved version: %(version)s") % {
        "state": label(data["state"], "campaign_state"),
        "version": data["approved_version"] or "-",
    }
    if data["paused_reason"]:
        line += _("; paused: %(reason)s") % {"reason": data["paused_reason"]}
    if data["next_occurrence_at"]:
        line += _("; next occurrence: %(at)s") % {"at": data["next_occurrence_at"]}
    console.print(line)
    print_table(
        _("Versions"),
        [
            _("version"),
            _("status"),
            _("hash"),
            _("created by"),
            _("submitted by"),
            _("audience"),
            _("decisions"),
        ],
        [
            [
                v["number"],
                label(v["status"], "version_status"),
                v["content_hash"][:12],
                v["created_by"],
                v["submitted_by"],
                v["audience_size"],
                "; ".join(
                    _("%(decision)s by %(login)s")
                    % {"decision": label(d["decision"], "decision"), "login": d["by"]}
                    for d in v["decisions"]
                ),
            ]
            for v in data["versions"]
        ],
    )
    if data["runs"]:
        print_table(
            _("Runs"),
            [
                _("run"),
                _("trigger"),
                _("occurrence"),
                _("status"),
                _("planned"),
                _("messages"),
                _("ended reason"),
            ],
            [
                [
                    r["id"],
                    label(r["trigger"], "run_trigger"),
                    r["occurrence_at"][:16].replace("T", " "),  # local time, to the minute
                    label(r["status"], "run_status"),
                    r["planned_messages"],
                    _count_summary(r["messages"]),
                    r["ended_reason"],
                ]
                for r in data["runs"]
            ],
        )
    print_counts(_("Messages"), data["messages"])
    print_counts(_("Test sends (not counted above)"), data["test_sends"])


def _count_summary(counts: dict[str, dict[str, int]]) -> str:
    """'sms: 9 delivered, 1 suppressed; email: 10 sent' for one run's counts (statuses in words)."""
    return "; ".join(
        f"{channel}: "
        + ", ".join(f"{n} {label(status, 'message_status')}" for status, n in sorted(per.items()))
        for channel, per in sorted(counts.items())
    )


def print_counts(title: str, counts: dict[str, dict[str, int]]) -> None:
    """Messages by channel (rows) and status (columns, in words)."""
    statuses = sorted({s for per_channel in counts.values() for s in per_channel})
    if statuses:
        print_table(
            title,
            [_("channel"), *(label(status, "message_status") for status in statuses)],
            [[channel, *(per.get(s, 0) for s in statuses)] for channel, per in counts.items()],
        )
