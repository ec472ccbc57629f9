"""``campaigns validate`` renders the sample SMS with the configured ``[org]``, as preview and sending do, so
the parts it counts are the parts that are paid for."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.settings_sections import OrgSettings
from tests.broadcaster.conftest import write_campaign
from tests.broadcaster.test_cli import Cli, one_line

# 88 characters: with it the sample SMS below needs 2 parts; with the 42-character default name, one.
LONG_NAME = "Trung tâm Thông tin và Dịch vụ công trực thuộc Sở Khoa học và Công nghệ thành phố Đà Nẵng"
SMS = "{{ org.name }} thong bao: tu {{ vars.ngay }}, thu tuc {{ vars.thu_tuc }} duoc tiep nhan truc tuyen."


@pytest.fixture
def cli(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("COLUMNS", "200")
    write_campaign(
        workdir,
        sms_text=SMS,
        channels={
            "sms": {
                "template": "sms/thu-nghiem",
                "provider": "sms_main",
                "unaccented": True,
                "max_segments": 1,
            }
        },
    )
    return Cli(monkeypatch)


def rename_org(workdir: Path, name: str) -> None:
    config = workdir / "broadcaster.toml"
    default = OrgSettings().name
    text = config.read_text(encoding="utf-8")
    assert f'name = "{default}"' in text
    config.write_text(text.replace(f'name = "{default}"', f'name = "{name}"', 1), encoding="utf-8")


def test_validate_counts_sms_parts_with_the_configured_org(cli: Cli, workdir: Path) -> None:
    assert "1 valid, 0 problem(s)" in one_line(cli("campaigns", "validate", "campaigns/tests").stdout)

    rename_org(workdir, LONG_NAME)
    result = cli("campaigns", "validate", "campaigns/tests", expect=1)
    problems = one_line(result.stderr)
    assert "channels.sms.max_segments" in problems
    assert "needs 2 parts" in problems
    assert LONG_NAME.split()[0] in problems  # the sample shows the configured name
    # load refuses it for the same reason: nothing that validate rejects becomes a version.
    refused = cli("campaigns", "load", "campaigns/tests", expect=1)
    assert "needs 2 parts" in one_line(refused.stderr)
