"""``broadcaster consent dnc import|status`` and ``campaigns exclude|exclusions``: whole files checked before
anything is stored, a refresh that replaces the register, audit entries, and the pending messages they stop."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry, Message
from broadcaster.vocabulary import MessageStatus
from consent.models import CampaignExclusion, DoNotCallEntry, DoNotCallImport
from consent.policy import REASON_TEXTS, ExclusionReason
from tests.broadcaster.conftest import database_dump, write_campaign
from tests.broadcaster.pending_messages import pending
from tests.broadcaster.test_cli import CAMPAIGN, CAMPAIGN_FILE, Cli, cli, one_line, team

__all__ = ["cli", "team"]  # the fixtures, shared with test_cli

REGISTER = """# Danh sách DNC, tháng 6
0905 123 456

+84 912 345 678
0905.123.456
01689123456
"""
REGISTER_NUMBERS = {"+84905123456", "+84912345678", "+84389123456"}  # 0168… is 038… since 2018


def register_numbers(context: AppContext) -> set[str]:
    with context.readers() as session:
        return set(session.scalars(select(DoNotCallEntry.phone)))


def audited(context: AppContext, action: str) -> list[AuditEntry]:
    with context.readers() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def statuses(context: AppContext) -> dict[int, tuple[MessageStatus, str | None]]:
    with context.readers() as session:
        return {m.id: (m.status, m.reason) for m in session.scalars(select(Message))}


def test_the_register_is_imported_and_stops_pending_advertising_sms(
    cli: Cli, context: AppContext, team: None, tmp_path: Path
) -> None:
    advert = pending(context, "+84905123456", purpose="advertising")
    notice = pending(context, "+84905123456", purpose="public_information")
    unlisted = pending(context, "+84905999888", purpose="advertising")
    file = tmp_path / "dnc.txt"
    file.write_text(REGISTER, encoding="utf-8")

    done = one_line(cli("consent", "dnc", "import", str(file), user="bien_tap").stdout)

    assert "Imported the DNC register from dnc.txt: 3 number(s)" in done
    assert "1 pending advertising message(s)" in done
    assert register_numbers(context) == REGISTER_NUMBERS
    assert statuses(context) == {
        advert: (MessageStatus.SUPPRESSED, REASON_TEXTS[ExclusionReason.DO_NOT_CALL]),
        notice: (MessageStatus.QUEUED, None),  # the register concerns advertising only
        unlisted: (MessageStatus.QUEUED, None),
    }
    status = cli.json("consent", "dnc", "status", user="kiem_toan")
    assert (status["file"], status["numbers"], status["imported_by"]) == ("dnc.txt", 3, "bien_tap")
    assert len(status["sha256"]) == 64
    [entry] = audited(context, "consent.dnc_import")
    assert entry.actor == "bien_tap"
    assert entry.details["numbers"] == 3
    assert entry.details["stopped_messages"] == 1
    table = one_line(cli("consent", "dnc", "status").stdout)
    assert "The do-not-call register (DNC) in force" in table
    assert "dnc.txt" in table


def test_a_new_import_replaces_the_register(
    cli: Cli, context: AppContext, team: None, tmp_path: Path
) -> None:
    first, second = tmp_path / "dnc-06.txt", tmp_path / "dnc-07.csv"
    first.write_text(REGISTER, encoding="utf-8")
    second.write_text("Họ tên;SĐT\nAn;0905 123 456\nBình;0977 000 111\n", encoding="utf-8")
    cli("consent", "dnc", "import", str(first))

    cli("consent", "dnc", "import", str(second))

    assert register_numbers(context) == {"+84905123456", "+84977000111"}
    with context.readers() as session:
        imports = [(i.source_name, i.numbers) for i in session.scalars(select(DoNotCallImport))]
    assert imports == [("dnc-06.txt", 3), ("dnc-07.csv", 2)]  # the history stays
    assert cli.json("consent", "dnc", "status")["file"] == "dnc-07.csv"
    assert [e.details["previous_numbers"] for e in audited(context, "consent.dnc_import")] == [0, 3]


def test_no_register_yet_says_so(cli: Cli) -> None:
    assert "No DNC register imported yet" in one_line(cli("consent", "dnc", "status").stdout)
    assert cli.json("consent", "dnc", "status") is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (REGISTER + "0905 12\n", "dnc.txt:7: '0905 12' is not a valid phone number"),
        ("0905123456\n\n# ok\n0123456789\nabc\n", "2 bad value(s)"),
        ("0905123456\nan@example.vn\n", "dnc.txt:2: 'an@example.vn' is not a phone"),
        ("0905123456\n09051\x0023456\n", "dnc.txt:2: '09051\\\\x0023456' holds a control character"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not UTF-8 text"),
        ("", "holds no phone; nothing was imported"),
        ("# only a comment\n\n", "holds no phone"),
        ("phone;ho_ten\n0905123456;An\n0905;Bình\n", "dnc.txt:3: '0905' is not a valid phone number"),
    ],
    ids=["bad-number", "two-bad", "e-mail", "control", "binary", "empty", "comments-only", "csv-column"],
)
def test_a_malformed_register_changes_nothing(
    cli: Cli, context: AppContext, team: None, tmp_path: Path, content: str | bytes, message: str
) -> None:
    good = tmp_path / "good.txt"
    good.write_text(REGISTER, encoding="utf-8")
    cli("consent", "dnc", "import", str(good))
    advert = pending(context, "+84977000111", purpose="advertising")
    file = tmp_path / "dnc.txt"
    if isinstance(content, bytes):
        file.write_bytes(content)
    else:
        file.write_text(content, encoding="utf-8")
    before = database_dump(context.engine)

    result = cli("consent", "dnc", "import", str(file), user="bien_tap", expect=1)

    assert message in one_line(result.stderr)
    assert database_dump(context.engine) == before
    assert register_numbers(context) == REGISTER_NUMBERS
    assert statuses(context)[advert] == (MessageStatus.QUEUED, None)


def test_a_missing_file_and_a_reader_role_change_nothing(
    cli: Cli, context: AppContext, team: None, tmp_path: Path
) -> None:
    file = tmp_path / "dnc.txt"
    file.write_text(REGISTER, encoding="utf-8")
    before = database_dump(context.engine)
    assert "khong-co.txt" in one_line(
        cli("consent", "dnc", "import", str(tmp_path / "khong-co.txt"), expect=1).stderr
    )
    assert "consent.manage" in one_line(
        cli("consent", "dnc", "import", str(file), user="kiem_toan", expect=1).stderr
    )
    assert database_dump(context.engine) == before


@pytest.fixture
def campaign(cli: Cli, workdir: Path, team: None) -> str:
    write_campaign(workdir)
    cli("campaigns", "load", CAMPAIGN_FILE, user="bien_tap")
    return CAMPAIGN


def test_an_exclusion_list_stops_that_campaigns_messages_only(
    cli: Cli, context: AppContext, campaign: str, tmp_path: Path
) -> None:
    ours_sms = pending(context, "+84905123456", purpose="public_information", campaign_id=campaign)
    ours_mail = pending(context, "an.nguyen@example.vn", purpose="public_information", channel="email",
                        campaign_id=campaign)  # fmt: skip
    elsewhere = pending(context, "+84905123456", purpose="public_information")
    file = tmp_path / "khong-gui.csv"
    file.write_text("ho_ten,phone,email\nAn,0905 123 456,An.Nguyen@Example.VN\nBình,,binh@example.vn\n",
                    encoding="utf-8")  # fmt: skip

    done = one_line(cli("campaigns", "exclude", campaign, str(file), "--name", "Cán bộ nghỉ hưu",
                        user="bien_tap").stdout)  # fmt: skip

    assert "«Cán bộ nghỉ hưu»" in done
    assert "3 newly added" in done
    assert "2 pending message(s)" in done
    assert statuses(context) == {
        ours_sms: (MessageStatus.SUPPRESSED, REASON_TEXTS[ExclusionReason.CAMPAIGN_LIST]),
        ours_mail: (MessageStatus.SUPPRESSED, REASON_TEXTS[ExclusionReason.CAMPAIGN_LIST]),
        elsewhere: (MessageStatus.QUEUED, None),  # another campaign's list is not this one's business
    }
    with context.readers() as session:
        stored = {(e.channel, e.address, e.list_name) for e in session.scalars(select(CampaignExclusion))}
    assert stored == {
        ("sms", "+84905123456", "Cán bộ nghỉ hưu"),
        ("email", "an.nguyen@example.vn", "Cán bộ nghỉ hưu"),
        ("email", "binh@example.vn", "Cán bộ nghỉ hưu"),
    }
    [entry] = audited(context, "campaign.exclusions_added")
    assert (entry.subject_id, entry.details["added"], entry.details["stopped_messages"]) == (campaign, 3, 2)

    again = one_line(cli("campaigns", "exclude", campaign, str(file)).stdout)  # adding twice adds nothing
    assert "0 newly added" in again

    masked = cli.json("campaigns", "exclusions", campaign, user="kiem_toan")
    assert [r["address"] for r in masked] == ["090****456", "a***@example.vn", "b***@example.vn"]
    full = cli.json("campaigns", "exclusions", campaign, user="bien_tap")
    assert full[0]["address"] == "+84905123456"
    table = one_line(cli("campaigns", "exclusions", campaign, user="kiem_toan").stdout)
    assert "Exclusion list" in table
    assert "E-mail" in table
    assert "+84905123456" not in table


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("0905123456\nan@example\n", "khong-gui.txt:2: 'an@example' is not a valid e-mail address"),
        ("phone,email\n0905123456,an@example.vn\n12,\n", "khong-gui.txt:3: '12' is not a valid phone number"),
        ("", "holds no email or phone"),
    ],
)
def test_a_malformed_exclusion_list_changes_nothing(
    cli: Cli, context: AppContext, campaign: str, tmp_path: Path, content: str, message: str
) -> None:
    file = tmp_path / "khong-gui.txt"
    file.write_text(content, encoding="utf-8")
    before = database_dump(context.engine)
    assert message in one_line(cli("campaigns", "exclude", campaign, str(file), expect=1).stderr)
    assert database_dump(context.engine) == before


def test_an_unknown_campaign_is_named(cli: Cli, context: AppContext, team: None, tmp_path: Path) -> None:
    file = tmp_path / "x.txt"
    file.write_text("0905123456\n", encoding="utf-8")
    before = database_dump(context.engine)
    assert "no campaign 'khong-co'" in one_line(
        cli("campaigns", "exclude", "khong-co", str(file), expect=1).stderr
    )
    assert database_dump(context.engine) == before
