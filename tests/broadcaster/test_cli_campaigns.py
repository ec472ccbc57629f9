"""``broadcaster campaigns …`` through the CLI: a campaign's whole lifecycle, refused decisions, a second
approver, and invalid files that load nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from broadcaster.context import AppContext
from tests.broadcaster.conftest import FIXTURES, database_dump, write_campaign
from tests.broadcaster.test_cli import CAMPAIGN, CAMPAIGN_FILE, Cli, cli, one_line, team

__all__ = ["cli", "team"]  # the fixtures, shared with test_cli


def test_campaign_lifecycle(cli: Cli, context: AppContext, team: None, workdir: Path) -> None:
    cli("contacts", "import", str(FIXTURES / "danh-ba.csv"), user="bien_tap")
    write_campaign(workdir, schedule={"start": "2030-06-03 08:00", "rrule": "FREQ=WEEKLY;BYDAY=MO"})

    validated = cli.json("campaigns", "validate", CAMPAIGN_FILE)
    assert [v["id"] for v in validated["valid"]] == [CAMPAIGN]
    assert validated["problems"] == []
    assert "1 valid, 0 problem(s)" in cli("campaigns", "validate", CAMPAIGN_FILE).stdout

    loaded = cli.json("campaigns", "load", CAMPAIGN_FILE, user="bien_tap")
    assert [(o["campaign_id"], o["version"], o["status"]) for o in loaded] == [(CAMPAIGN, 1, "created")]
    content_hash = loaded[0]["content_hash"]
    assert "unchanged" in cli("campaigns", "load", CAMPAIGN_FILE, user="bien_tap").stdout

    listed = cli.json("campaigns", "list", user="kiem_toan")
    assert listed == [
        {
            "id": CAMPAIGN,
            "title": "Thông báo thử nghiệm tiếp nhận hồ sơ trực tuyến",
            "state": "draft",
            "latest_version": 1,
            "latest_status": "draft",
            "next_occurrence_at": None,
        }
    ]

    preview = cli.json("campaigns", "preview", CAMPAIGN, "--samples", "1", user="phe_duyet")
    assert preview["content_hash"] == content_hash
    channels = {c["channel"]: c for c in preview["channels"]}
    assert channels["sms"]["recipients"] == 9
    assert len(channels["sms"]["samples"]) == 1
    shown = one_line(cli("campaigns", "preview", CAMPAIGN, user="phe_duyet").stdout)
    assert "Recipients: 9" in shown
    assert "excluded: 1 — landline: cannot receive SMS" in shown
    assert "estimated cost" in shown

    submitted = one_line(cli("campaigns", "submit", CAMPAIGN, "-m", "xin duyệt", user="bien_tap").stdout)
    assert "for 11 recipients; needs 1 approval(s)" in submitted

    approved = cli(
        "campaigns", "approve", CAMPAIGN, "--hash", content_hash[:12], "-m", "ok", user="phe_duyet"
    )
    assert "Approved" in approved.stdout

    scheduled = one_line(cli("campaigns", "schedule", CAMPAIGN, user="bien_tap").stdout)
    assert "next occurrence 2030-06-03 08:00 (Asia/Ho_Chi_Minh)" in scheduled
    assert "Paused" in cli("campaigns", "pause", CAMPAIGN, "-m", "tạm dừng", user="phe_duyet").stdout
    assert "(scheduled)" in cli("campaigns", "resume", CAMPAIGN, user="bien_tap").stdout

    status = cli.json("status", CAMPAIGN, user="kiem_toan")
    assert (status["state"], status["approved_version"]) == ("scheduled", 1)
    assert status["next_occurrence_at"] == "2030-06-03T08:00:00+07:00"
    version = status["versions"][0]
    assert (version["status"], version["submitted_by"], version["audience_size"]) == (
        "approved",
        "bien_tap",
        11,
    )
    assert [(d["by"], d["decision"], d["reason"]) for d in version["decisions"]] == [
        ("phe_duyet", "approve", "ok")
    ]
    assert "approve by phe_duyet" in cli("status", CAMPAIGN).stdout

    assert "Cancelled" in cli("campaigns", "cancel", CAMPAIGN, "-m", "hết hạn", user="bien_tap").stdout
    assert cli.json("status", CAMPAIGN)["state"] == "cancelled"


def test_reject_and_refused_decisions(cli: Cli, context: AppContext, team: None, workdir: Path) -> None:
    write_campaign(workdir)
    content_hash = cli.json("campaigns", "load", CAMPAIGN_FILE, user="bien_tap")[0]["content_hash"]
    cli("campaigns", "submit", CAMPAIGN, user="bien_tap")
    cli("users", "set-role", "bien_tap", "approver")
    before = database_dump(context.engine)

    own = cli("campaigns", "approve", CAMPAIGN, "--hash", content_hash[:8], user="bien_tap", expect=1)
    assert "another user must approve it" in one_line(own.stderr)
    for decision in (["approve"], ["reject", "-m", "Sai ngày"]):
        unhashed = one_line(cli("campaigns", *decision, CAMPAIGN, user="phe_duyet", expect=1).stderr)
        assert (
            "--hash needs at least 8 characters of the content hash of the version you reviewed" in unhashed
        )
        assert f"broadcaster campaigns preview {CAMPAIGN}" in unhashed
        assert f"broadcaster status {CAMPAIGN}" in unhashed
    write_campaign(workdir, title="Bản sửa")
    stale = cli("campaigns", "approve", CAMPAIGN, "--hash", "0123456789ab", user="phe_duyet", expect=1)
    assert "what you reviewed is stale" in one_line(stale.stderr)
    missing_reason = cli("campaigns", "reject", CAMPAIGN, user="phe_duyet", expect=2)
    assert "--reason" in missing_reason.stderr
    blank = cli("campaigns", "reject", CAMPAIGN, "-m", "  ", user="phe_duyet", expect=1)
    assert "needs a reason" in blank.stderr
    assert database_dump(context.engine) == before

    cli(
        "campaigns",
        "reject",
        CAMPAIGN,
        "--hash",
        content_hash[:8],
        "-m",
        "Sai ngày áp dụng",
        user="phe_duyet",
    )
    status = cli.json("status", CAMPAIGN)
    assert status["versions"][0]["status"] == "rejected"
    assert status["versions"][0]["decisions"][0]["reason"] == "Sai ngày áp dụng"


def test_second_approver_through_the_cli(cli: Cli, context: AppContext, team: None, workdir: Path) -> None:
    cli("policy", "set", "second_approver_threshold", "3", "--reason", "thử quy trình hai người duyệt")
    cli("contacts", "import", str(FIXTURES / "danh-ba.csv"), user="bien_tap")
    write_campaign(workdir)
    reviewed = cli.json("campaigns", "load", CAMPAIGN_FILE, user="bien_tap")[0]["content_hash"][:10]
    assert "needs 2 approval(s)" in one_line(cli("campaigns", "submit", CAMPAIGN, user="bien_tap").stdout)
    first = one_line(cli("campaigns", "approve", CAMPAIGN, "--hash", reviewed, user="phe_duyet").stdout)
    assert "(1/2); a second approver is needed" in first
    twice = cli("campaigns", "approve", CAMPAIGN, "--hash", reviewed, user="phe_duyet", expect=1)
    assert "already approved" in twice.stderr
    assert "Approved" in cli("campaigns", "approve", CAMPAIGN, "--hash", reviewed, user="pho_giam_doc").stdout


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        ("yaml", "malformed YAML"),
        ("variable", "vars.ngay_het_han"),
        ("template", "email/khong-co"),
        ("provider", "sms_backup"),
    ],
)
def test_invalid_campaign_files_load_nothing(
    cli: Cli, context: AppContext, team: None, workdir: Path, problem: str, expected: str
) -> None:
    good = write_campaign(workdir, id="chien-dich-hop-le")
    if problem == "yaml":
        bad = write_campaign(workdir)
        bad.write_text(bad.read_text(encoding="utf-8") + "channels: [sms\n  - email:\n", encoding="utf-8")
    elif problem == "variable":
        bad = write_campaign(workdir, template="sai-bien", sms_text="Hạn chót {{ vars.ngay_het_han }}.")
    elif problem == "template":
        bad = write_campaign(
            workdir,
            channels={
                "sms": {"template": "sms/thu-nghiem", "provider": "sms_main"},
                "email": {"template": "email/khong-co", "provider": "mail"},
            },
        )
    else:
        bad = write_campaign(
            workdir,
            channels={"sms": {"template": "sms/thu-nghiem", "provider": "sms_backup"}},
        )
    before = database_dump(context.engine)
    result = cli("campaigns", "load", str(good), str(bad), user="bien_tap", expect=1)
    errors = one_line(result.stderr)
    assert expected in errors
    assert f"{bad.name}:" in errors  # the file (and line) is named
    assert "nothing was loaded" in errors
    assert database_dump(context.engine) == before
    checked = cli("campaigns", "validate", str(bad), "--json", expect=1)
    assert json.loads(checked.stdout)["problems"]


# Commands that change something, with a role that may not run them.
