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
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from broadcaster.cli import app
from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry, Contact, ContactImport, User
from broadcaster.vocabulary import Role
from tests.broadcaster.conftest import ADMIN_LOGIN, database_dump, write_campaign
from tests.broadcaster.test_cli import Cli, one_line


@pytest.fixture
def cli(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("COLUMNS", "200")
    return Cli(monkeypatch)


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

    assert str(path) in refused
    assert "more than 3 rows" in refused
    assert "contacts.max_rows" in refused
    assert "Nothing was imported" in refused
    assert database_dump(context.engine) == before


def test_a_header_only_file_imports_nothing_and_fails(cli: Cli, context: AppContext, workdir: Path) -> None:
    path = workdir / "chi-co-tieu-de.csv"
    path.write_text("Họ và tên,Số điện thoại\n", encoding="utf-8")
    before = database_dump(context.engine)
    refused = one_line(cli("contacts", "import", str(path), expect=1).stderr)
    assert str(path) in refused
    assert "no contacts" in refused
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

    assert str(linked) in refused
    assert "outside the templates directory" in refused
    assert database_dump(context.engine) == before


# --- init --force in an existing working directory ------------------------------------------------------------


def _files(directory: Path) -> dict[str, bytes]:
    """Every file of a working directory but the database's, by relative path: proves nothing was touched."""
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and ".sqlite3" not in path.name
    }


def _init_force(cli: Cli, *extra: str, user: str = ADMIN_LOGIN, answer: str | None = None) -> Result:
    cli.monkeypatch.setattr("getpass.getuser", lambda: user)
    return cli.runner.invoke(app, ["init", ".", "--force", *extra], input=answer)


@pytest.fixture
def edited(workdir: Path) -> Path:
    """The working directory after a month of use: ports changed, a template edited, a file of one's own."""
    config = workdir / "broadcaster.toml"
    text = config.read_text(encoding="utf-8").replace("port = 2775", "port = 12775")
    text = text.replace('url = "sqla+sqlite:///broker.sqlite3"', 'url = "sqla+sqlite:///hang-doi.sqlite3"')
    config.write_text(text, encoding="utf-8")
    readme = workdir / "templates" / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + "\nGhi chú của đơn vị.\n", encoding="utf-8")
    (workdir / "templates" / "sms" / "cua-don-vi.txt.j2").write_text("{{ org.name }}", encoding="utf-8")
    return workdir


@pytest.mark.parametrize("user", ["bien_tap", "nguoi_la"], ids=["editor", "not a user"])
def test_init_force_by_a_non_admin_changes_nothing(
    cli: Cli, context: AppContext, create_user: Callable[..., User], edited: Path, user: str
) -> None:
    create_user(role=Role.EDITOR, login="bien_tap")
    files, before = _files(edited), database_dump(context.engine)

    result = _init_force(cli, "--yes", user=user)

    assert result.exit_code == 1
    assert ("needs one of: admin" if user == "bien_tap" else "is not a Broadcaster user") in one_line(
        result.stderr
    )
    assert _files(edited) == files
    assert database_dump(context.engine) == before


@pytest.mark.parametrize("answer", ["n\n", None], ids=["no", "no answer"])
def test_init_force_without_confirmation_changes_nothing(
    cli: Cli, context: AppContext, edited: Path, answer: str | None
) -> None:
    files, before = _files(edited), database_dump(context.engine)

    result = _init_force(cli, answer=answer)

    assert result.exit_code == 1
    assert "templates/README.md" in result.stdout  # the plan was shown before the question
    assert _files(edited) == files
    assert database_dump(context.engine) == before


def test_init_force_by_an_admin_backs_up_edited_files_and_keeps_the_secret(
    cli: Cli, context: AppContext, edited: Path
) -> None:
    secret = context.settings.security.unsubscribe_secret
    subject_key = context.settings.security.subject_key
    edited_config = (edited / "broadcaster.toml").read_text(encoding="utf-8")
    edited_readme = (edited / "templates" / "README.md").read_text(encoding="utf-8")
    removed = next(edited.glob("campaigns/*/*.yaml"))
    removed_text = removed.read_text(encoding="utf-8")
    removed.unlink()

    result = _init_force(cli, answer="y\n")

    assert result.exit_code == 0, (result.stdout, result.stderr)
    backups = list((edited / "backups").iterdir())
    assert len(backups) == 1
    assert one_line(str(backups[0])) in one_line(result.stdout)
    # Edited files are in the backup as they were, and the defaults are back.
    assert (backups[0] / "broadcaster.toml").read_text(encoding="utf-8") == edited_config
    assert (backups[0] / "templates" / "README.md").read_text(encoding="utf-8") == edited_readme
    assert removed.read_text(encoding="utf-8") == removed_text
    assert "Ghi chú của đơn vị" not in (edited / "templates" / "README.md").read_text(encoding="utf-8")
    assert (edited / "templates" / "sms" / "cua-don-vi.txt.j2").is_file()  # a file of one's own stays
    # The secret (opt-out links already sent) and the broker are kept; the ports are the defaults again.
    restored = AppContext.load(edited / "broadcaster.toml")
    try:
        assert restored.settings.security.unsubscribe_secret == secret
        assert restored.settings.security.subject_key == subject_key != ""  # erasures stay recognised
        assert restored.settings.broker.url == "sqla+sqlite:///hang-doi.sqlite3"
        assert restored.settings.providers["sms_main"].options()["port"] == 2775
    finally:
        restored.close()
    with context.sessions() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "workdir.restore_defaults")
        ).one()
        users = list(session.scalars(select(User.login)))
    assert entry.actor == ADMIN_LOGIN
    assert set(entry.details["replaced"]) == {"broadcaster.toml", "templates/README.md"}
    assert users == [ADMIN_LOGIN]

    # Run again: the files are the defaults now, nothing to restore, no question asked.
    again = _init_force(cli)
    assert again.exit_code == 0
    assert "nothing to restore" in one_line(again.stdout)


def test_init_force_on_a_new_directory_is_a_plain_init(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_env: None
) -> None:
    monkeypatch.chdir(tmp_path)
    Cli(monkeypatch)("init", "moi", "--force")
    assert (tmp_path / "moi" / "broadcaster.toml").is_file()


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
        assert result.stderr.startswith("error:")
        assert "Nothing was imported" in one_line(result.stderr)
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


def test_init_force_leaves_an_older_installation_without_a_subject_key_keying_erasures_as_before(
    cli: Cli, context: AppContext, workdir: Path
) -> None:
    config = workdir / "broadcaster.toml"
    text = config.read_text(encoding="utf-8")
    older = "\n".join(line for line in text.splitlines() if not line.startswith("subject_key")) + "\n"
    config.write_text(older, encoding="utf-8")
    key_before = AppContext.load(config)
    try:
        erasure_key = key_before.settings.security.erasure_key()
    finally:
        key_before.close()

    result = _init_force(cli, answer="y\n")

    assert result.exit_code == 0, (result.stdout, result.stderr)
    restored = AppContext.load(config)
    try:
        # A new key would forget the erasures made under the unsubscribe secret.
        assert restored.settings.security.subject_key == ""
        assert restored.settings.security.erasure_key() == erasure_key
    finally:
        restored.close()
