"""The contacts file format is documented where a newcomer looks (``contacts import --help`` and the README),
in step with the reader; rows left without a segment, which no campaign reaches, are reported."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from broadcaster.contacts.header import FIELDS, HEADER_ALIASES
from tests.broadcaster.test_cli import Cli, one_line

README = Path(__file__).resolve().parents[2] / "README.md"


def names_and_aliases() -> list[str]:
    return [name for field in FIELDS for name in (field, *HEADER_ALIASES.get(field, ()))]


def test_import_help_lists_every_column_and_its_vietnamese_names(cli: Cli) -> None:
    text = one_line(cli("contacts", "import", "--help").stdout)
    missing = [name for name in names_and_aliases() if name not in text]
    assert missing == []
    assert "segment" in text
    assert "no campaign reaches" in text


def test_readme_documents_every_column_and_its_vietnamese_names() -> None:
    readme = README.read_text(encoding="utf-8")
    section = re.search(r"^### Contacts file\n(.*?)(?=^#)", readme, re.MULTILINE | re.DOTALL)
    assert section is not None, "README.md has no '### Contacts file' section"
    missing = [name for name in names_and_aliases() if name not in section.group(1)]
    assert missing == []


CSV = """\ufeffHọ và tên,SĐT,Nhóm
Nguyễn Văn An,0905000001,citizen
Trần Thị Bình,0905000002,
Lê Văn Cường,0905000003,citizen
Phạm Thị Dung,0905000004,
"""


def test_rows_without_a_segment_are_reported_as_unreachable(cli: Cli, workdir: Path) -> None:
    path = workdir / "danh-ba.csv"
    path.write_text(CSV, encoding="utf-8")

    result = cli("contacts", "import", "danh-ba.csv")

    assert "2 rows have no segment, so no campaign reaches them: rows 3, 5" in one_line(result.stdout)
    # Imported again with the segment filled in for one of them: only the other is still unreachable.
    path.write_text(
        CSV.replace("Trần Thị Bình,0905000002,", "Trần Thị Bình,0905000002,citizen"), encoding="utf-8"
    )
    report = cli.json("contacts", "import", "danh-ba.csv")
    assert report["without_segment"] == [5]
    again = one_line(cli("contacts", "import", "danh-ba.csv").stdout)
    assert "1 row has no segment, so no campaign reaches it: row 5." in again


@pytest.fixture
def cli(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("COLUMNS", "200")
    return Cli(monkeypatch)
