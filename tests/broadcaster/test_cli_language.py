"""The CLI speaks the installation's language: ``[org] language``, else ``LANG``; help pages, messages,
error lines, table headers and the contacts report's row reasons are Vietnamese under ``vi``, while
``--json`` stays as it is. The rest of the suite runs in English (tests/broadcaster/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from broadcaster.cli import app
from tests.broadcaster.conftest import FIXTURES


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _run(*args: str, expect: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == expect, (args, result.stdout, result.stderr, result.exception)
    return result


def _set_language(workdir: Path, language: str) -> None:
    config = workdir / "broadcaster.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[org]\n", f'[org]\nlanguage = "{language}"\n', 1), encoding="utf-8")


@pytest.fixture
def in_workdir(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("COLUMNS", "200")
    return workdir


@pytest.fixture
def vi_nowhere(tmp_path: Path, isolated_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder without settings, LANG=vi: the run's language comes from LANG alone."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("LANG", "vi_VN.UTF-8")


def test_org_language_vi_translates_the_main_help(in_workdir: Path) -> None:
    _set_language(in_workdir, "vi")
    page = _one_line(_run("--help").stdout)
    assert "Công cụ của cán bộ để làm việc với hệ thống" in page
    assert "Tùy chọn" in page
    assert "Lệnh" in page
    assert "Hiện trợ giúp này rồi thoát." in page
    assert "Options" not in page


def test_lang_vi_translates_a_command_help_without_a_working_directory(
    vi_nowhere: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = _one_line(_run("users", "add", "--help").stdout)
    assert "Thêm người dùng (chỉ quản trị viên)." in page
    assert "Đối số" in page
    assert "[bắt buộc]" in page
    # The next run in English gets the English texts back: the translation lasts one run.
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    assert "Add a user (admins only)." in _one_line(_run("users", "add", "--help").stdout)


def test_lang_vi_translates_error_lines_and_table_headers(
    in_workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANG", "vi_VN.UTF-8")
    refused = _run("users", "add", "Bad Login", "--role", "editor", expect=1)
    assert _one_line(refused.stderr).startswith("lỗi: tên đăng nhập 'Bad Login' không hợp lệ")
    table = _run("users", "list").stdout
    assert "tên đăng nhập" in table
    assert "vai trò" in table
    assert "Người dùng" in table


def test_contacts_report_reasons_are_vietnamese_in_the_table_and_english_in_json(
    in_workdir: Path,
) -> None:
    _set_language(in_workdir, "vi")
    table = _one_line(_run("contacts", "import", str(FIXTURES / "danh-ba.csv")).stdout)
    assert "15 dòng" in table
    assert "không phải số điện thoại Việt Nam hợp lệ" in table
    assert "external_id bị trùng (đã dùng lần đầu ở dòng 4)" in table
    assert "họ tên để trống" in table
    report = json.loads(_run("contacts", "import", str(FIXTURES / "danh-ba.csv"), "--json").stdout)
    reasons = {problem["reason"] for problem in report["problems"]}
    assert "not a valid Vietnamese number" in reasons
    assert {problem["severity"] for problem in report["problems"]} <= {"error", "warning"}


def test_org_language_en_wins_over_lang_vi(in_workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _set_language(in_workdir, "en")
    monkeypatch.setenv("LANG", "vi_VN.UTF-8")
    page = _one_line(_run("--help").stdout)
    assert "The officer's interface to the engine" in page
    assert "Options" in page
    refused = _run("users", "add", "Bad Login", "--role", "editor", expect=1)
    assert "login 'Bad Login' is not valid" in _one_line(refused.stderr)


def test_lang_vi_translates_clicks_usage_errors_naming_the_option(
    vi_nowhere: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    typo = _one_line(_run("users", "add", "lan", "--rol", "editor", expect=2).stderr)
    assert "Cách dùng: " in typo  # CliRunner names the program "root"
    assert "Không có tùy chọn --rol (các tùy chọn gần giống: --role)" in typo
    assert "Usage" not in typo
    assert "No such option" not in typo
    root = _one_line(_run("--bogus", expect=2).stderr)
    assert "Không có tùy chọn --bogus" in root
    missing = _one_line(_run("users", "add", expect=2).stderr)
    assert "Thiếu đối số 'login'." in missing
    wrong = _one_line(_run("users", "add", "x", "--role", "chief", expect=2).stderr)
    assert "Giá trị không hợp lệ cho '--role' / '-r': 'chief' không phải là một trong các giá trị" in wrong
    # The same run in English reads click's own words.
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    english = _one_line(_run("users", "add", "lan", "--rol", "editor", expect=2).stderr)
    assert "Usage: " in english
    assert "No such option: --rol (Possible options: --role)" in english


def test_a_click_text_no_pattern_knows_stays_as_it_is() -> None:
    from broadcaster import i18n
    from broadcaster.cli.click_texts import translate_click_message

    with i18n.using("vi"):
        assert translate_click_message("Input should be a valid date") == "Input should be a valid date"
        assert (
            translate_click_message("Invalid value for '--from': Input should be a valid date")
            == "Giá trị không hợp lệ cho '--from': Input should be a valid date"
        )


def test_lang_vi_translates_the_consent_rooms_refusals_and_the_settings_errors(
    in_workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANG", "vi_VN.UTF-8")
    args = ["consent", "grant", "0905123456", "--purpose", "marketing", "--notice", "v1", "--reason", "x"]
    refused = _one_line(_run(*args, expect=1).stderr)
    assert "lỗi: không có mục đích 'marketing'; hãy dùng một trong: " in refused
    with (in_workdir / "broadcaster.toml").open("a", encoding="utf-8") as handle:
        handle.write("\n[consent.purposes.marketing]\ncaps_per_24h = { sms = 2 }\n")
    broken = _one_line(_run("users", "list", expect=1).stderr)
    assert "broadcaster.toml: thiết lập không hợp lệ:" in broken
    assert "[consent.purposes.marketing]: không có mục đích 'marketing' (các mục đích hiện có: " in broken
