"""Hostile or broken input through the ``broadcaster`` command (issue 9, items 8-12): each is refused with one
clear line naming the file and what to do, in bounded time, and changes nothing in the database.

The property test feeds random CSV files to ``contacts import``: whatever the bytes, the command ends with exit
code 0 (a row-level report) or 1 (the file refused, the database unchanged), never with a traceback.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from broadcaster.cli import app
from broadcaster.context import AppContext
from broadcaster.db.models import Contact, ContactImport
from tests.broadcaster.conftest import database_dump, write_campaign
from tests.broadcaster.test_cli import Cli, one_line


@pytest.fixture
def cli(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("COLUMNS", "200")
    yield Cli(monkeypatch)


def _count(context: AppContext, model: type[Contact] | type[ContactImport]) -> int:
    with context.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


# --- contacts import ---------------------------------------------------------------------------------------


def test_the_row_limit_from_the_settings_refuses_the_file(
    cli: Cli, context: AppContext, workdir: Path
) -> None:
    config = workdir / "broadcaster.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[contacts]\nmax_rows = 3\n", encoding="utf-8")
    path = workdir / "danh-ba.csv"
    path.write_text("full_name,phone\n" + "".join(f"Người {n},091234567{n}\n" for n in range(4)), "utf-8")
    before = database_dump(context.engine)

    refused = one_line(cli("contacts", "import", str(path), expect=1).stderr)

    assert str(path) in refused and "more than 3 rows" in refused and "contacts.max_rows" in refused
    assert "Nothing was imported" in refused
    assert database_dump(context.engine) == before


def test_a_header_only_file_imports_nothing_and_fails(cli: Cli, context: AppContext, workdir: Path) -> None:
    path = workdir / "chi-co-tieu-de.csv"
    path.write_text("Họ và tên,Số điện thoại\n", encoding="utf-8")
    before = database_dump(context.engine)
    refused = one_line(cli("contacts", "import", str(path), expect=1).stderr)
    assert str(path) in refused and "no contacts" in refused
    assert database_dump(context.engine) == before
    assert _count(context, ContactImport) == 0


def test_a_nul_in_a_name_refuses_that_row_only(cli: Cli, context: AppContext, workdir: Path) -> None:
    path = workdir / "danh-ba.csv"
    path.write_text("full_name,phone\nNguyễn\x00An,0912345678\nTrần Bình,0912345670\n", encoding="utf-8")
    report = cli.json("contacts", "import", str(path))
    assert (report["created"], report["skipped"]) == (1, 1)
    (problem,) = report["problems"]
    assert (problem["row"], problem["column"], problem["value"]) == (2, "full_name", "Nguyễn\\x00An")
    assert "U+0000" in problem["reason"]
    with context.sessions() as session:
        assert list(session.scalars(select(Contact.full_name))) == ["Trần Bình"]


# --- templates ---------------------------------------------------------------------------------------------


def test_a_template_linked_outside_the_templates_is_not_loaded(
    cli: Cli, context: AppContext, workdir: Path, tmp_path: Path
) -> None:
    campaign = write_campaign(workdir)
    secret = tmp_path / "hostname"
    secret.write_text("may-chu-noi-bo\n", encoding="utf-8")
    linked = workdir / "templates" / "sms" / "thu-nghiem.txt.j2"
    linked.unlink()
    linked.symlink_to(secret)
    before = database_dump(context.engine)

    refused = one_line(cli("campaigns", "load", str(campaign), expect=1).stderr)

    assert str(linked) in refused and "outside the templates directory" in refused
    assert database_dump(context.engine) == before


# --- property: random CSV files to contacts import ---------------------------------------------------------

HEADERS = [
    ["full_name", "phone", "email", "segment", "tags"],
    ["Họ và tên", "SĐT", "Ghi chú"],
    ["external_id", "full_name", "email"],
]
# Cells mix what real files hold (names, numbers in many spellings, e-mails) with what breaks parsers:
# separators, quotes, line breaks, control characters, other scripts.
CELL = st.one_of(
    st.sampled_from(
        ["Nguyễn Văn An", "0905 123 456", "+84912345678", "an@danang.gov.vn", "citizen", "", " "]
    ),
    st.text(
        alphabet=st.sampled_from(list("aĐễ0189+@.,;\"'\n\r\t \x00\x1b\x7f\x85\u2028\ufeff")), max_size=12
    ),
    st.text(max_size=12),
)
ROWS = st.lists(st.lists(CELL, max_size=7), max_size=8)


def _as_csv(header: list[str], rows: list[list[str]], *, quoted: bool, delimiter: str) -> bytes:
    """A CSV file: written by the csv module (well-formed), or joined by hand (broken quoting and all)."""
    if quoted:
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter).writerows([header, *rows])
        text = buffer.getvalue()
    else:
        text = "\n".join(delimiter.join(row) for row in [header, *rows])
    return text.encode("utf-8")


@settings(
    max_examples=60,
    deadline=None,  # the machine is shared; a hang still fails the run by the suite's timeout
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    header=st.one_of(st.sampled_from(HEADERS), st.lists(CELL, max_size=5)),
    rows=ROWS,
    quoted=st.booleans(),
    delimiter=st.sampled_from([",", ";"]),
    garbage=st.one_of(st.just(b""), st.binary(max_size=8)),
)
def test_random_csv_files_end_in_a_report_or_a_refusal_that_changes_nothing(
    workdir: Path,
    context: AppContext,
    monkeypatch: pytest.MonkeyPatch,
    header: list[str],
    rows: list[list[str]],
    quoted: bool,
    delimiter: str,
    garbage: bytes,
) -> None:
    monkeypatch.chdir(workdir)
    path = workdir / f"ngau-nhien-{next(_numbers)}.csv"
    path.write_bytes(_as_csv(header, rows, quoted=quoted, delimiter=delimiter) + garbage)
    before = database_dump(context.engine)

    result: Result = CliRunner().invoke(app, ["contacts", "import", str(path), "--json"])

    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1), (result.exit_code, result.stderr)
    if result.exit_code == 1:
        assert result.stderr.startswith("error:") and "Nothing was imported" in one_line(result.stderr)
        assert database_dump(context.engine) == before
    else:
        report = json.loads(result.stdout)
        assert report["total_rows"] > 0  # a file without contacts is refused
        assert not any(_has_control(contact) for contact in _stored(context))
        assert report["total_rows"] == report["created"] + report["updated"] + report["skipped"] + sum(
            1 for merge in report["merges"] if merge["matched_by"].startswith("earlier row")
        )


_numbers = itertools.count()


def _stored(context: AppContext) -> list[Contact]:
    with context.sessions() as session:
        return list(session.scalars(select(Contact)))


def _has_control(contact: Contact) -> bool:
    texts = [contact.full_name, contact.external_id, contact.segment, contact.agency, contact.district]
    texts += [*(contact.tags or []), *(contact.attributes or {}).keys(), *(contact.attributes or {}).values()]
    return any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for text in texts for ch in text or "")
