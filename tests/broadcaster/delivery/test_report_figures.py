"""``broadcaster report``: a seeded database (two runs through the real pipeline and peers, a withdrawal and
recorded activities, all through the public API) gives exactly the expected figures in the CSV; the closed
period's days are frozen, so blanking the messages' content (retention) leaves the CSV byte-identical."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docx
import openpyxl
import pytest
from sqlalchemy import func, select, update

from broadcaster.campaigns.audience import Exclusion
from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry, Message, RollupDay, RollupFrozenDay, RollupReach
from broadcaster.reporting.csv_writer import COLUMNS
from broadcaster.reporting.labels import reason_label
from broadcaster.reporting.rollups import BUCKETS
from broadcaster.users import add_user
from broadcaster.vocabulary import MessageStatus, Role
from channels.sandbox.smtp import SmtpBehaviour
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_operator_commands import Cli
from tests.broadcaster.delivery.workdir_files import EDITOR, citizens

PEOPLE = citizens(6)
REFUSED = PEOPLE[1]["email"]  # 550 5.1.1 at RCPT in run 1, then suppressed in run 2
AUDITOR = "kiem_toan"


@pytest.fixture
def seeded(make_pipeline: PipelineFactory, monkeypatch: pytest.MonkeyPatch) -> tuple[Pipeline, Cli]:
    """2025-06-02: run 1 of III.9 (6 SMS delivered by receipts, 6 e-mails, one refused); a withdrawal;
    2025-06-03: run 2 of III.4 (e-mail only); then, in December, two recorded activities of 2025-H2."""
    pipeline = make_pipeline(smtp=SmtpBehaviour(reject_recipients=[REFUSED]))
    monkeypatch.setattr(
        "broadcaster.cli.common.load_context",
        lambda: AppContext.load(pipeline.config, clock=pipeline.clock),
    )
    cli = Cli(pipeline, monkeypatch)
    pipeline.add_contacts(PEOPLE)
    first = pipeline.send(pipeline.approved_campaign())
    pipeline.wait_for_statuses(first, {("sms", "delivered"): 6})
    cli(
        "consent",
        "withdraw",
        PEOPLE[5]["email"],
        "--purpose",
        "public_information",
        "--reason",
        "thư yêu cầu",
    )
    pipeline.advance(days=1)
    pipeline.send(
        pipeline.approved_campaign(
            id="hop-bao-quy-2",
            plan_item="III.4",
            channels={"email": {"template": "email/thu-nghiem", "provider": "mail"}},
        )
    )
    with pipeline.context.sessions.begin() as session:
        add_user(session, actor=ADMIN_LOGIN, login=AUDITOR, role=Role.AUDITOR, clock=pipeline.clock)
    pipeline.advance(days=200)  # 2025-12-20: 2025-H2 (to 15/11) closed more than 15 days ago
    cli("activities", "record", "--date", "2025-06-10", "--plan-item", "III.4", "--agency", "vp-ubnd",
        "--kind", "press_briefing", "--title", "Họp báo định kỳ quý II/2025")  # fmt: skip
    cli("activities", "record", "--date", "2025-05-20", "--plan-item", "III.5.a", "--agency", "dai-ptth",
        "--kind", "tv_segment", "--title", "Chuyên mục Cải cách hành chính số 1")  # fmt: skip
    return pipeline, cli


def report_rows(path: Path) -> list[dict[str, str]]:
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # Excel reads Vietnamese only with the BOM
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows
    assert tuple(rows[0]) == COLUMNS
    return rows


def section(rows: list[dict[str, str]], name: str) -> dict[str, dict[str, str]]:
    return {row["key"]: row for row in rows if row["section"] == name}


def figures(row: dict[str, str]) -> dict[str, Any]:
    keys = ("planned", "sent", "delivered", "failed", "suppressed", "people", "opt_outs", "sms_parts")
    return {key: int(row[key]) for key in keys}


def expected_quantile(seconds: list[float], q: float) -> str:
    """The bucket bound a rank falls in, computed apart from the code under test."""
    ordered = sorted(seconds)
    value = ordered[max(1, -(-int(q * 100) * len(ordered) // 100)) - 1]
    return str(next(bound for bound in BUCKETS if value <= bound))


def test_the_report_has_exactly_the_seeded_figures_and_a_closed_period_survives_retention(
    seeded: tuple[Pipeline, Cli], tmp_path: Path
) -> None:
    pipeline, cli = seeded
    messages = pipeline.messages()
    statuses = sorted((m.channel, m.status.value) for m in messages)
    assert statuses == sorted(
        [("sms", "delivered")] * 6
        + [("email", "sent")] * 5
        + [("email", "permanent_failure")]
        + [("email", "sent")] * 4
        + [("email", "suppressed")] * 2
    )
    sms_parts = sum(m.segments or 0 for m in messages if m.channel == "sms")
    assert sms_parts >= 6
    cost = sum((m.cost or 0) for m in messages)
    delays = [
        (m.final_at - m.sent_at).total_seconds()
        for m in messages
        if m.status is MessageStatus.DELIVERED and m.final_at is not None and m.sent_at is not None
    ]
    assert len(delays) == 6

    out = tmp_path / "bao-cao.csv"
    shown = cli("report", "--period", "2025-H2", "--format", "csv", "--out", str(out), user=AUDITOR)
    assert "Report of period 2025-H2 (từ ngày 16/05/2025 đến ngày 15/11/2025)" in shown
    assert f"Wrote {out} (csv)" in shown
    rows = report_rows(out)
    assert not out.with_name("bao-cao.csv.part").exists()  # written whole, then renamed

    header = {key: row["label"] for key, row in section(rows, "header").items()}
    assert header["superior_name"] == "UBND THÀNH PHỐ ĐÀ NẴNG"
    assert header["agency_name"] == "Sở Khoa học và Công nghệ thành phố Đà Nẵng"
    assert (header["agency_code"], header["place"]) == ("SKHCN", "Đà Nẵng")
    assert (header["period_start"], header["period_end"]) == ("2025-05-16", "2025-11-15")

    totals = section(rows, "totals")["all"]
    assert figures(totals) == {
        "planned": 18, "sent": 15, "delivered": 6, "failed": 1, "suppressed": 2,
        "people": 6, "opt_outs": 1, "sms_parts": sms_parts,
    }  # fmt: skip
    assert totals["delivery_rate"] == f"{6 / 15:.4f}"
    assert totals["cost_vnd"] == f"{cost:.2f}"
    assert totals["median_seconds"] == expected_quantile(delays, 0.5)
    assert totals["p95_seconds"] == expected_quantile(delays, 0.95)
    reasons = section(rows, "suppressed_reason")
    assert sum(int(row["suppressed"]) for row in reasons.values()) == 2

    items = section(rows, "plan_item")
    assert figures(items["III.9"]) | {"runs": items["III.9"]["runs"]} == {
        "planned": 12, "sent": 11, "delivered": 6, "failed": 1, "suppressed": 0,
        "people": 6, "opt_outs": 1, "sms_parts": sms_parts, "runs": "1",
    }  # fmt: skip
    assert figures(items["III.4"]) | {"activities": items["III.4"]["activities"]} == {
        "planned": 6, "sent": 4, "delivered": 0, "failed": 0, "suppressed": 2,
        "people": 4, "opt_outs": 1, "sms_parts": 0, "activities": "1",
    }  # fmt: skip
    assert (items["III.5.a"]["activities"], items["III.5.a"]["planned"]) == ("1", "0")
    agencies = section(rows, "agency")
    assert agencies["skhcn"]["label"] == "Sở Khoa học và Công nghệ thành phố Đà Nẵng"
    assert (agencies["skhcn"]["planned"], agencies["vp-ubnd"]["planned"]) == ("12", "6")
    channels = section(rows, "channel")
    assert (figures(channels["sms"])["delivered"], channels["sms"]["label"]) == (6, "Tin nhắn SMS")
    assert figures(channels["email"]) == {  # the refused address was never accepted: 5 people
        "planned": 12, "sent": 9, "delivered": 0, "failed": 1, "suppressed": 2,
        "people": 5, "opt_outs": 1, "sms_parts": 0,
    }  # fmt: skip
    assert figures(section(rows, "purpose")["public_information"])["planned"] == 18
    monthly = [(r["key"], r["label"], r["sent"]) for r in rows if r["section"] == "monthly"]
    assert monthly == [("2025-06", "email", "9"), ("2025-06", "sms", "6")]

    compliance = section(rows, "compliance")
    # III.4 is quarterly: Q2 (16/5–30/6) was met by the run and the briefing, Q3 (to 30/9) was missed.
    assert (compliance["III.4"]["required"], compliance["III.4"]["done"]) == ("2", "2")
    assert compliance["III.4"]["missed"] == "2025-09-30"
    assert compliance["III.4"]["done_days"] == "2025-06-03 2025-06-10"
    # III.5.a every two weeks from 16/5: 13 full fortnights to 15/11, only the first done.
    assert compliance["III.5.a"]["required"] == "13"
    assert len(compliance["III.5.a"]["missed"].split()) == 12
    assert compliance["V"]["missed"] == "2025-11-15"
    activities = [(r["key"], r["plan_item"], r["kind"]) for r in rows if r["section"] == "activity"]
    assert activities == [
        ("2025-05-20", "III.5.a", "tv_segment"),
        ("2025-06-02", "III.9", "broadcast"),
        ("2025-06-03", "III.4", "broadcast"),
        ("2025-06-10", "III.4", "press_briefing"),
    ]

    # The auditor's report stored nothing; the editor's rebuild stores the rollups and freezes the closed days.
    with pipeline.context.readers() as session:
        assert session.scalar(select(func.count()).select_from(RollupFrozenDay)) == 0
    cli("report", "rollup")
    # Retention blanks the messages' content and addresses: the frozen days keep the report byte-identical.
    with pipeline.context.sessions.begin() as session:
        frozen = session.scalar(select(func.count()).select_from(RollupFrozenDay))
        assert frozen == 2  # the two days with data of the closed half-year
        session.execute(
            update(Message).values(body="", subject=None, address="", address_key="", contact_id=None)
        )
    again = tmp_path / "lai.csv"
    cli("report", "--period", "2025-H2", "--out", str(again), user=AUDITOR)
    assert again.read_bytes() == out.read_bytes()


def test_rollups_rebuild_idempotently_and_only_an_admin_refreezes_with_a_reason(
    seeded: tuple[Pipeline, Cli],
) -> None:
    pipeline, cli = seeded

    def stored() -> tuple[int, int, int]:
        with pipeline.context.readers() as session:
            return (
                int(session.scalar(select(func.sum(RollupDay.messages))) or 0),
                int(session.scalar(select(func.count()).select_from(RollupReach)) or 0),
                int(session.scalar(select(func.count()).select_from(RollupFrozenDay)) or 0),
            )

    later = pipeline.clock.now()
    pipeline.clock.set(datetime(2025, 11, 20, 3, 0, tzinfo=UTC))  # 2025-H2 ended 5 days ago: within the grace
    open_days = cli("report", "rollup")
    assert "Rolled up 2 day(s)" in open_days
    assert "Froze" not in open_days
    assert stored() == (18, 15, 0)
    pipeline.clock.set(later)

    first = cli("report", "rollup", "--from", "2025-06-01", "--to", "2025-06-30")
    assert "Rolled up 2 day(s), from 02/06/2025 to 03/06/2025" in first
    assert "Froze 2 more day(s)" in first
    assert stored() == (18, 6 + 5 + 4, 2)  # reach: per day, item and channel
    assert "Skipped 2 frozen day(s)" in cli("report", "rollup")
    assert stored() == (18, 15, 2)

    refused = cli("report", "rollup", "--refreeze", "--reason", "sửa số liệu", user=EDITOR, expect=1)
    assert "reports.refreeze" in refused
    assert "--reason" in cli("report", "rollup", "--refreeze", user=ADMIN_LOGIN, expect=1)
    with pipeline.context.sessions.begin() as session:
        session.execute(
            update(Message).where(Message.channel == "sms").values(status=MessageStatus.CANCELLED)
        )
    cli(
        "report",
        "rollup",
        "--from",
        "2025-06-01",
        "--to",
        "2025-06-30",
        "--refreeze",
        "--reason",
        "sửa số liệu",
        user=ADMIN_LOGIN,
    )
    assert stored() == (18, 15, 2)
    with pipeline.context.readers() as session:
        cancelled = session.scalar(
            select(func.sum(RollupDay.messages)).where(RollupDay.status == "cancelled")
        )
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "rollup.refrozen")).one()
    assert cancelled == 6
    assert (entry.actor, entry.reason, entry.subject_id) == (
        ADMIN_LOGIN,
        "sửa số liệu",
        "2025-06-01..2025-06-30",
    )


def test_bad_options_name_the_option_and_change_nothing(seeded: tuple[Pipeline, Cli], tmp_path: Path) -> None:
    pipeline, cli = seeded
    out = tmp_path / "x.csv"
    assert "--period" in cli("report", "--period", "2025-H3", "--out", str(out), user=AUDITOR, expect=1)
    assert "--format" in cli("report", "--period", "2025-H2", "--format", "pdf", user=AUDITOR, expect=1)
    assert "--out" in cli("report", "--period", "2025-H2", "--out", str(tmp_path / "no" / "x.csv"), expect=1)
    assert "give --period" in cli("report", user=AUDITOR, expect=1)
    approver = pipeline.approver.login  # approvers decide on campaigns; reports are not theirs
    assert "reports.read" in cli("report", "--period", "2025-H2", "--out", str(out), user=approver, expect=1)
    assert not out.exists()
    with pipeline.context.readers() as session:
        assert session.scalar(select(func.count()).select_from(RollupDay)) == 0


def test_the_docx_and_xlsx_carry_the_same_figures_as_the_csv(
    seeded: tuple[Pipeline, Cli], tmp_path: Path
) -> None:
    _pipeline, cli = seeded
    paths = {fmt: tmp_path / f"bao-cao.{fmt}" for fmt in ("csv", "docx", "xlsx")}
    for fmt, path in paths.items():
        shown = cli("report", "--period", "2025-H2", "--format", fmt, "--out", str(path), user=AUDITOR)
        assert f"Wrote {path} ({fmt})" in shown
    by_item = section(report_rows(paths["csv"]), "plan_item")
    expected = {
        key: [
            int(row[column]) for column in ("campaigns", "runs", "activities", "planned", "sent", "delivered")
        ]
        for key, row in by_item.items()
    }
    assert sum(counts[3] for counts in expected.values()) == 18  # the seeded messages, as the CSV test says

    sheet = openpyxl.load_workbook(paths["xlsx"], read_only=True)["Theo mục kế hoạch"]
    in_xlsx = {
        row[0]: [int(value) for value in row[2:8]]
        for row in sheet.iter_rows(min_row=2, values_only=True)
        if row[0] in expected
    }
    assert in_xlsx == expected

    document = docx.Document(str(paths["docx"]))
    cells = [[cell.text.strip() for cell in row.cells] for table in document.tables for row in table.rows]
    for key, counts in expected.items():
        # The plan-item table's row ("III.4. <title>") holds its counts, in the CSV's order.
        assert any(row[0].startswith(f"{key}. ") and [str(c) for c in counts] == row[1:7] for row in cells), (
            key
        )
    # The header block (Decree 30/2020) names the settings' agency under the city, and the national motto.
    (agency, nation), (number, place) = cells[0], cells[1]
    assert agency.splitlines() == ["UBND THÀNH PHỐ ĐÀ NẴNG", "SỞ KHOA HỌC VÀ CÔNG NGHỆ THÀNH PHỐ ĐÀ NẴNG"]
    assert nation.splitlines() == ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc"]
    assert number.startswith("Số:")
    assert number.endswith("/BC-SKHCN")
    assert place.startswith("Đà Nẵng, ngày ")
    # Officers read kinds and reasons in Vietnamese; the CSV keeps the stored keys.
    text = "\n".join(cell for row in cells for cell in row)
    assert "Họp báo" in text
    assert "press_briefing" not in text
    reasons = [row[0] for row in cells if row[0].startswith("Không gửi - lý do: ")]
    # The refused address in run 2, and the person who withdrew after run 1.
    assert reasons == [
        f"Không gửi - lý do: {reason_label(r)}" for r in (Exclusion.SUPPRESSED, Exclusion.OPTED_OUT)
    ]
    assert "address suppressed" not in text
    assert "opted out" not in text
