"""``broadcaster consent show|grant|withdraw``: the history in Vietnamese, staff changes with a role, a reason
and an audit entry; bad input changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry
from broadcaster.settings import CONFIG_FILENAME
from tests.broadcaster.conftest import database_dump
from tests.broadcaster.test_cli import Cli, cli, one_line, team

__all__ = ["cli", "team"]  # the fixtures, shared with test_cli


def test_staff_grant_and_withdraw_show_in_the_history(cli: Cli, context: AppContext, team: None) -> None:
    cli("consent", "grant", "0905 123 456", "--purpose", "advertising", "--notice", "v1",
        "--reason", "ký phiếu tại bộ phận một cửa", "--evidence", "phiếu 17", user="bien_tap")  # fmt: skip
    cli("consent", "withdraw", "+84 905 123 456", "--purpose", "public_information", "--reason", "gọi điện",
        user="bien_tap")  # fmt: skip

    shown = cli.json("consent", "show", "0905123456", user="kiem_toan")
    assert (shown["channel"], shown["address"]) == ("sms", "+84905123456")
    assert shown["current"] == {"official_duty": None, "public_information": False, "advertising": True}
    assert [(e["action"], e["purpose"], e["source"], e["recorded_by"]) for e in shown["events"]] == [
        ("grant", "advertising", "staff", "bien_tap"),
        ("withdraw", "public_information", "staff", "bien_tap"),
    ]
    assert (shown["events"][0]["notice_version"], shown["events"][0]["evidence"]) == ("v1", "phiếu 17")

    table = one_line(cli("consent", "show", "0905.123.456").stdout)
    for text in ("Lịch sử đồng ý nhận tin", "Quảng cáo", "Thông tin công", "Rút lại đồng ý", "Đã từ chối",
                 "Cán bộ ghi nhận", "ký phiếu tại bộ phận một cửa"):  # fmt: skip
        assert text in table, text

    with context.readers() as session:
        audited = session.scalars(select(AuditEntry).where(AuditEntry.action.like("consent.%"))).all()
    assert [(a.action, a.actor, a.reason) for a in audited] == [
        ("consent.grant", "bien_tap", "ký phiếu tại bộ phận một cửa"),
        ("consent.withdraw", "bien_tap", "gọi điện"),
    ]


def test_an_email_address_is_normalised(cli: Cli, team: None) -> None:
    cli("consent", "withdraw", "An.Nguyen@Example.VN", "--purpose", "advertising", "--reason", "thư yêu cầu")
    shown = cli.json("consent", "show", "an.nguyen@example.vn")
    assert (shown["channel"], shown["address"]) == ("email", "an.nguyen@example.vn")
    assert shown["current"]["advertising"] is False


def test_nothing_recorded_says_so(cli: Cli) -> None:
    assert "Chưa có ghi nhận nào" in one_line(cli("consent", "show", "0905123456").stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["grant", "0905123456", "--purpose", "advertising", "--notice", "v9", "--reason", "x"], "v9.md"),
        (
            ["grant", "0905123456", "--purpose", "marketing", "--notice", "v1", "--reason", "x"],
            "unknown purpose",
        ),
        (["withdraw", "0905123456", "--purpose", "advertising", "--reason", " "], "reason"),
        (["withdraw", "12345", "--purpose", "advertising", "--reason", "x"], "number"),
        (
            ["withdraw", "0905123456", "--channel", "email", "--purpose", "advertising", "--reason", "x"],
            "channel",
        ),
    ],
)
def test_bad_input_changes_nothing(
    cli: Cli, context: AppContext, team: None, args: list[str], message: str
) -> None:
    before = database_dump(context.engine)
    result = cli("consent", *args, user="bien_tap", expect=1)
    assert message in one_line(result.stderr)
    assert database_dump(context.engine) == before


@pytest.mark.parametrize("login", ["phe_duyet", "kiem_toan"])
def test_only_admins_and_editors_record_consent(
    cli: Cli, context: AppContext, team: None, login: str
) -> None:
    before = database_dump(context.engine)
    result = cli("consent", "withdraw", "0905123456", "--purpose", "advertising", "--reason", "x", user=login,
                 expect=1)  # fmt: skip
    assert "consent.manage" in one_line(result.stderr)
    assert database_dump(context.engine) == before


def test_init_writes_the_default_notices(workdir: Path) -> None:
    for purpose in ("official_duty", "public_information", "advertising"):
        assert (workdir / "notices" / purpose / "v1.md").is_file()


def test_duplicate_opt_out_keywords_stop_a_command_at_start_and_change_nothing(
    cli: Cli, context: AppContext, workdir: Path, team: None
) -> None:
    """Two entries that normalise alike ("HUY" and "Hủy") are refused when the settings load, naming the
    setting, before anything is written."""
    config = workdir / CONFIG_FILENAME
    config.write_text(
        config.read_text(encoding="utf-8") + '\n[consent]\nopt_out_keywords = ["HUY", "TC", "Hủy"]\n',
        encoding="utf-8",
    )
    before = database_dump(context.engine)
    result = cli("consent", "withdraw", "0905123456", "--purpose", "advertising", "--reason", "x", expect=1)
    error = one_line(result.stderr)
    assert "consent.opt_out_keywords" in error
    assert "'Hủy'" in error
    assert "duplicates 'HUY'" in error
    assert database_dump(context.engine) == before
