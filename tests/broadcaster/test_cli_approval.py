"""What an approver and a sender see on the command line: the hash is required, ``campaigns diff`` shows what
changed, approving a newer version says what happened to the older versions' waiting messages, a one-off
campaign is not sent twice without ``--again``, and ``status`` shows the runs and keeps test sends apart."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry, CampaignRun, Message, User
from broadcaster.outbox.planner import plan_run
from broadcaster.outbox.queues import RecordingEnqueuer
from broadcaster.outbox.sending import create_test_messages
from broadcaster.vocabulary import MessageStatus, RunStatus
from tests.broadcaster.conftest import FIXTURES, write_campaign
from tests.broadcaster.test_cli import CAMPAIGN, CAMPAIGN_FILE, Cli, cli, one_line, team

__all__ = ["cli", "team"]  # the fixtures, shared with test_cli

NEW_SMS = "{{ org.short_name }}: từ {{ vars.ngay }} thủ tục {{ vars.thu_tuc }} làm trực tuyến hoàn toàn."


def load_and_submit(cli: Cli) -> str:
    """Load the campaign file, submit it as the editor; returns the hash prefix the approver reviews."""
    content_hash: str = cli.json("campaigns", "load", CAMPAIGN_FILE, user="bien_tap")[-1]["content_hash"]
    cli("campaigns", "submit", CAMPAIGN, user="bien_tap")
    return content_hash[:10]


def audit(context: AppContext, action: str) -> list[AuditEntry]:
    with context.readers() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def plan(context: AppContext, run_id: int) -> int:
    """What the plan task does (no workers run here: the messages stay queued); returns how many wait."""
    plan_run(
        context.sessions,
        run_id=run_id,
        settings=context.settings,
        clock=context.clock,
        enqueuer=RecordingEnqueuer(),
    )
    with context.readers() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.run_id == run_id, Message.status == MessageStatus.QUEUED)
            )
            or 0
        )


def test_diff_shows_the_campaign_file_and_the_templates_that_changed(
    cli: Cli, team: None, workdir: Path
) -> None:
    write_campaign(workdir)
    cli("campaigns", "load", CAMPAIGN_FILE, user="bien_tap")
    write_campaign(workdir, sms_text=NEW_SMS, title="Thông báo (bản sửa)")
    cli("campaigns", "load", CAMPAIGN_FILE, user="bien_tap")

    shown = cli("campaigns", "diff", CAMPAIGN, "1", "2", user="kiem_toan").stdout
    assert "2 file(s) differ" in one_line(shown)
    assert "-title: Thông báo thử nghiệm tiếp nhận hồ sơ trực tuyến" in shown
    assert "+title: Thông báo (bản sửa)" in shown
    assert f"+{NEW_SMS}" in shown
    assert "templates/email" not in shown  # unchanged templates are not shown

    data = cli.json("campaigns", "diff", CAMPAIGN, "1", "2", user="kiem_toan")
    assert (data["from"]["version"], data["to"]["version"]) == (1, 2)
    assert data["from"]["content_hash"] != data["to"]["content_hash"]
    files = {f["path"]: f for f in data["files"]}
    assert set(files) == {f"{CAMPAIGN}.yaml", "templates/sms/thu-nghiem.txt.j2"}
    assert [f["kind"] for f in data["files"]] == ["campaign", "template"]
    template = files["templates/sms/thu-nghiem.txt.j2"]
    assert template["change"] == "changed"
    assert template["diff"].startswith(
        "--- v1/templates/sms/thu-nghiem.txt.j2\n+++ v2/templates/sms/thu-nghiem.txt.j2\n"
    )
    assert f"\n+{NEW_SMS}\n" in template["diff"]

    same = cli.json("campaigns", "diff", CAMPAIGN, "2", "2")
    assert same["files"] == []
    missing = cli("campaigns", "diff", CAMPAIGN, "1", "7", expect=1)
    assert "has no version 7" in one_line(missing.stderr)


def test_approving_a_newer_version_stops_the_older_runs_and_says_so(
    cli: Cli, context: AppContext, team: None, workdir: Path
) -> None:
    cli("contacts", "import", str(FIXTURES / "danh-ba.csv"), user="bien_tap")
    write_campaign(workdir)
    cli("campaigns", "approve", CAMPAIGN, "--hash", load_and_submit(cli), user="phe_duyet")
    assert "queued" in cli("send", CAMPAIGN, user="bien_tap").stdout
    with context.readers() as session:
        run_id = session.scalars(select(CampaignRun.id)).one()
    waiting = plan(context, run_id)
    assert waiting > 0

    write_campaign(workdir, sms_text=NEW_SMS)
    approved = one_line(
        cli("campaigns", "approve", CAMPAIGN, "--hash", load_and_submit(cli), user="phe_duyet").stdout
    )
    assert "Approved thong-bao-thu-nghiem version 2" in approved
    assert f"Older versions' runs ({run_id}) had {waiting} message(s) waiting; cancelled" in approved

    status = cli.json("status", CAMPAIGN, user="kiem_toan")
    [run] = status["runs"]
    assert (run["id"], run["trigger"], run["status"]) == (run_id, "manual", "cancelled")
    assert run["ended_reason"] == "superseded by version 2 (approved by phe_duyet)"
    assert sum(per.get("cancelled", 0) for per in run["messages"].values()) == waiting
    table = one_line(cli("status", CAMPAIGN).stdout)
    assert "Runs" in table
    assert "superseded by version 2 (approved by phe_duyet)" in table
    assert "cancelled" in table
    assert "sent by hand" in table  # the trigger in words (broadcaster/web/labels.py)


def test_keep_pending_is_shown_and_audited(cli: Cli, context: AppContext, team: None, workdir: Path) -> None:
    cli("contacts", "import", str(FIXTURES / "danh-ba.csv"), user="bien_tap")
    write_campaign(workdir)
    cli("campaigns", "approve", CAMPAIGN, "--hash", load_and_submit(cli), user="phe_duyet")
    cli("send", CAMPAIGN, user="bien_tap")
    with context.readers() as session:
        run_id = session.scalars(select(CampaignRun.id)).one()
    waiting = plan(context, run_id)

    write_campaign(workdir, sms_text=NEW_SMS)
    reviewed = load_and_submit(cli)
    kept = one_line(
        cli("campaigns", "approve", CAMPAIGN, "--hash", reviewed, "--keep-pending", user="phe_duyet").stdout
    )
    assert f"had {waiting} message(s) waiting; kept (--keep-pending): they will still be sent" in kept
    [entry] = audit(context, "campaign.older_runs_kept")
    assert (entry.actor, entry.details["pending_messages"]) == ("phe_duyet", waiting)
    assert cli.json("status", CAMPAIGN)["runs"][0]["status"] == "sending"


def test_a_one_off_campaign_is_sent_again_only_with_again(
    cli: Cli, context: AppContext, team: None, workdir: Path
) -> None:
    cli("contacts", "import", str(FIXTURES / "danh-ba.csv"), user="bien_tap")
    write_campaign(workdir)
    cli("campaigns", "approve", CAMPAIGN, "--hash", load_and_submit(cli), user="phe_duyet")
    cli("send", CAMPAIGN, user="bien_tap")

    twice = one_line(cli("send", CAMPAIGN, user="bien_tap", expect=1).stderr)
    assert "was already sent" in twice
    assert "0 people received it" in twice
    assert f"broadcaster send {CAMPAIGN} --again" in twice
    assert len(audit(context, "campaign.send")) == 1

    assert "queued" in cli("send", CAMPAIGN, "--again", user="bien_tap").stdout
    entries = audit(context, "campaign.send")
    assert [e.details.get("again") for e in entries] == [None, True]
    assert entries[-1].details["already_received"] == 0


def test_status_keeps_test_sends_apart(cli: Cli, context: AppContext, team: None, workdir: Path) -> None:
    cli("contacts", "import", str(FIXTURES / "danh-ba.csv"), user="bien_tap")
    write_campaign(workdir)
    cli("campaigns", "load", CAMPAIGN_FILE, user="bien_tap")
    with context.sessions.begin() as session:
        editor = session.scalars(select(User).where(User.login == "bien_tap")).one()
        create_test_messages(
            session,
            campaign_id=CAMPAIGN,
            to=["0912345678", "lan@danang.gov.vn"],
            actor=editor,
            settings=context.settings,
            clock=context.clock,
        )

    status = cli.json("status", CAMPAIGN)
    assert status["messages"] == {}
    assert status["test_sends"] == {"sms": {"queued": 1}, "email": {"queued": 1}}
    shown = one_line(cli("status", CAMPAIGN).stdout)
    assert "Test sends (not counted above)" in shown


def test_submitting_for_nobody_warns(cli: Cli, team: None, workdir: Path) -> None:
    write_campaign(workdir)  # no contacts were imported
    cli("campaigns", "load", CAMPAIGN_FILE, user="bien_tap")
    result = cli("campaigns", "submit", CAMPAIGN, user="bien_tap")
    assert "for 0 recipients" in one_line(result.stdout)
    warning = one_line(result.stderr)
    assert "warning: version 1 reaches 0 recipients" in warning
    assert f"broadcaster campaigns preview {CAMPAIGN}" in warning
    assert cli.json("status", CAMPAIGN)["versions"][0]["status"] == "submitted"  # submitted all the same


def test_send_with_the_broker_out_of_reach_says_the_run_is_kept_for_the_tick(
    cli: Cli, context: AppContext, team: None, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run is committed before its plan task is published: when the broker refuses that, the officer is
    told the run's number and that the tick asks for it again (outbox.scheduler, stalled plans)."""
    from kombu.exceptions import OperationalError

    cli("contacts", "import", str(FIXTURES / "danh-ba.csv"), user="bien_tap")
    write_campaign(workdir)
    cli("campaigns", "approve", CAMPAIGN, "--hash", load_and_submit(cli), user="phe_duyet")

    def refused(_self: object, _run_id: int) -> None:
        raise OperationalError("[Errno 111] Connection refused")

    monkeypatch.setattr("broadcaster.tasks.CeleryEnqueuer.plan_run", refused)
    line = one_line(cli("send", CAMPAIGN, user="bien_tap", expect=1).stderr)

    with context.readers() as session:
        run_id, status = session.execute(select(CampaignRun.id, CampaignRun.status)).one()
    assert status == RunStatus.PLANNING
    assert f"run {run_id} is recorded but its planning task did not reach the broker" in line
    assert "[Errno 111] Connection refused" in line
    assert "asks for it again 300 s after it started" in line
