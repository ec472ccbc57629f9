"""``broadcaster activities record|list``: activities recorded with their evidence (copied under its SHA-256),
refused input that stores nothing, and broadcast runs listed as activities of their campaign's plan item."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster.campaigns import workflow
from broadcaster.clock import FrozenClock
from broadcaster.context import AppContext
from broadcaster.db.models import Activity, AuditEntry, User
from broadcaster.outbox.sending import start_manual_run
from tests.broadcaster.campaigns.conftest import people
from tests.broadcaster.campaigns.steps import CAMPAIGN, approved_campaign, run
from tests.broadcaster.conftest import database_dump, write_campaign
from tests.broadcaster.test_cli import Cli, one_line

__all__ = ["people"]  # the fixture, shared with the campaign workflow tests

BRIEFING = ["--plan-item", "III.4", "--agency", "vp-ubnd", "--kind", "press_briefing"]


@pytest.fixture
def cli(workdir: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI in the working directory, on the tests' frozen clock (2025-06-02 08:00 in Đà Nẵng)."""
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setattr(
        "broadcaster.cli.common.load_context",
        lambda: AppContext.load(workdir / "broadcaster.toml", clock=clock),
    )
    return Cli(monkeypatch)


def test_an_editor_records_activities_with_a_file_or_a_link(
    cli: Cli, context: AppContext, workdir: Path, people: dict[str, User]
) -> None:
    minutes = workdir / "bien-ban-hop-bao.pdf"
    minutes.write_bytes(b"%PDF-1.4 bien ban hop bao quy II")
    sha = hashlib.sha256(minutes.read_bytes()).hexdigest()

    recorded = cli.json(
        "activities", "record", "--date", "2025-05-10", *BRIEFING,
        "--title", "Họp báo định kỳ quý II/2025", "--evidence", minutes.name, user="bien_tap",
    )  # fmt: skip
    assert recorded["evidence"] == f"evidence/{sha}.pdf"
    assert recorded["evidence_sha256"] == sha
    assert (workdir / "evidence" / f"{sha}.pdf").read_bytes() == minutes.read_bytes()
    minutes.write_bytes(b"edited later")  # the filed copy does not change
    assert hashlib.sha256((workdir / recorded["evidence"]).read_bytes()).hexdigest() == sha

    link = "https://danang.gov.vn/tin-tuc/doi-thoai-doanh-nghiep-2025"
    shown = cli(
        "activities", "record", "--date", "2025-04-20", "--plan-item", "III.2", "--agency", "stc",
        "--kind", "dialogue", "--title", "Hội nghị đối thoại với doanh nghiệp năm 2025", "--evidence", link,
    )  # fmt: skip
    assert "Recorded activity" in one_line(shown.stdout)

    with context.readers() as session:
        rows = session.scalars(select(Activity).order_by(Activity.id)).all()
        audits = session.scalars(select(AuditEntry).where(AuditEntry.action == "activity.recorded")).all()
    assert [(a.plan_item, a.agency, a.kind, a.evidence, a.evidence_sha256, a.recorded_by) for a in rows] == [
        ("III.4", "vp-ubnd", "press_briefing", f"evidence/{sha}.pdf", sha, "bien_tap"),
        ("III.2", "stc", "dialogue", link, None, ADMIN),
    ]
    assert [(e.actor, e.subject_id, e.details["plan_item"]) for e in audits] == [
        ("bien_tap", str(rows[0].id), "III.4"),
        (ADMIN, str(rows[1].id), "III.2"),
    ]

    table = one_line(cli("activities", "list", user="kiem_toan").stdout)
    assert "Communication activities of administrative reform" in table
    assert "Họp báo" in table
    assert "Văn phòng UBND thành phố Đà Nẵng" in table
    assert "Sở Tài chính thành phố Đà Nẵng" in table  # the agency's name from the settings
    assert table.index("20/04/2025") < table.index("10/05/2025")
    assert "In all: 2 activities." in table

    # A renamed agency is one settings change: the list follows it, the stored key stays.
    config = workdir / "broadcaster.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace('"Sở Tài chính thành phố Đà Nẵng"', '"Sở Tài chính Đà Nẵng (mới)"'), encoding="utf-8"
    )
    renamed = cli.json("activities", "list", "--plan-item", "III.2")["activities"]
    assert [(a["agency"], a["agency_name"]) for a in renamed] == [("stc", "Sở Tài chính Đà Nẵng (mới)")]


ADMIN = "quan_tri"


@pytest.mark.parametrize(
    ("args", "user", "words"),
    [
        (["--plan-item", "III.10", "--agency", "vp-ubnd", "--kind", "press_briefing"], "bien_tap",
         "--plan-item: unknown plan item 'III.10'"),
        (["--plan-item", "III.4", "--agency", "so-tttt", "--kind", "press_briefing"], "bien_tap",
         "--agency: unknown agency 'so-tttt'"),
        (["--plan-item", "III.4", "--agency", "vp-ubnd", "--kind", "party"], "bien_tap", "--kind: unknown kind 'party'"),
        ([*BRIEFING, "--evidence", "khong-co.pdf"], "bien_tap", "--evidence: no such file"),
        ([*BRIEFING, "--date", "2025-06-03"], "bien_tap", "--date: 2025-06-03 is in the future (today is 2025-06-02)"),
        ([*BRIEFING, "--date", "10/05/2025"], "bien_tap", "--date: '10/05/2025' is not a date"),
        ([*BRIEFING, "--title", "  "], "bien_tap", "--title: say what was done"),
        (BRIEFING, "kiem_toan", "activities.record"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_and_stores_nothing(
    cli: Cli,
    context: AppContext,
    workdir: Path,
    people: dict[str, User],
    args: list[str],
    user: str,
    words: str,
) -> None:
    defaults = {"--date": "2025-05-10", "--title": "Họp báo định kỳ quý II/2025"}
    for option, value in defaults.items():
        if option not in args:
            args = [*args, option, value]
    (workdir / "bien-ban.pdf").write_bytes(b"minutes")
    if "--evidence" not in args:
        args = [*args, "--evidence", "bien-ban.pdf"]  # a good file: only the bad option is to blame
    before = database_dump(context.engine)
    result = cli("activities", "record", *args, user=user, expect=1)
    assert words in one_line(result.stdout + result.stderr)
    assert database_dump(context.engine) == before
    with context.readers() as session:
        assert session.scalar(select(Activity.id)) is None
    assert not (workdir / "evidence").exists()


def test_broadcast_runs_count_as_activities_of_their_plan_item(
    cli: Cli, context: AppContext, clock: FrozenClock, workdir: Path, people: dict[str, User]
) -> None:
    approved_campaign(
        context, {"editor": people["editor"], "approver": people["approver"]}, write_campaign(workdir)
    )
    first = run(
        context, lambda s: start_manual_run(s, campaign_id=CAMPAIGN, actor=people["editor"], clock=clock)
    )
    # 00:30 on 16/11 in Đà Nẵng is still 15/11 in UTC: the run is dated by its local start, in 2026-H1.
    clock.set(datetime(2025, 11, 15, 17, 30, tzinfo=UTC))
    second = run(
        context,
        lambda s: start_manual_run(s, campaign_id=CAMPAIGN, actor=people["editor"], clock=clock, again=True),
    )
    clock.set(datetime(2025, 11, 20, 1, 0, tzinfo=UTC))
    cli(
        "activities",
        "record",
        "--date",
        "2025-05-10",
        *BRIEFING,
        "--title",
        "Họp báo quý II",
        user="bien_tap",
    )

    def listed(*options: str) -> list[tuple[str, str, str, str, str]]:
        data = cli.json("activities", "list", *options)
        return [
            (a["source"], a["occurred_on"], a["plan_item"], a["kind"], a["agency"])
            for a in data["activities"]
        ]

    assert listed() == [
        ("recorded", "2025-05-10", "III.4", "press_briefing", "vp-ubnd"),
        ("run", "2025-06-02", "III.9", "broadcast", "skhcn"),  # the item's lead agency, from the plan
        ("run", "2025-11-16", "III.9", "broadcast", "skhcn"),
    ]
    assert listed("--period", "2025-H1") == [("recorded", "2025-05-10", "III.4", "press_briefing", "vp-ubnd")]
    assert listed("--period", "2025-H2") == [("run", "2025-06-02", "III.9", "broadcast", "skhcn")]
    assert listed("--period", "2026-H1") == [("run", "2025-11-16", "III.9", "broadcast", "skhcn")]
    assert listed("--plan-item", "III.9", "--from", "2025-06-01", "--to", "2025-06-02") == [
        ("run", "2025-06-02", "III.9", "broadcast", "skhcn")
    ]
    assert listed("--plan-item", "III.4", "--from", "2025-06-01") == []
    data = cli.json("activities", "list", "--period", "2025-H2")
    assert data["period"] == {"label": "2025-H2", "from": "2025-05-16", "to": "2025-11-15"}
    assert data["activities"][0]["id"] == first
    assert data["activities"][0]["evidence"].startswith(f"{CAMPAIGN} #{first}")

    table = one_line(cli("activities", "list", "--period", "2025-H2").stdout)
    assert "period 2025-H2, từ ngày 16/05/2025 đến ngày 15/11/2025" in table
    assert "Gửi tin (chiến dịch)" in table
    assert "Sở Khoa học và Công nghệ thành phố Đà Nẵng" in table

    # A cancelled run did not go out: it is not an activity.
    run(
        context,
        lambda s: workflow.cancel(
            s, campaign_id=CAMPAIGN, actor=people["editor"], reason="nhầm", clock=clock
        ),
    )
    # Both runs were still being planned: the cancellation stopped them, and neither is listed any more.
    listed_now = cli.json("activities", "list")["activities"]
    assert {first, second}.isdisjoint(a["id"] for a in listed_now if a["source"] == "run")
    assert [a["source"] for a in listed_now] == ["recorded"]

    refused = cli("activities", "list", "--period", "2025-H1", "--from", "2025-01-01", expect=1)
    assert "cannot be combined" in one_line(refused.stderr)
    refused = cli("activities", "list", "--plan-item", "III.10", expect=1)
    assert "unknown plan item 'III.10'" in one_line(refused.stderr)
