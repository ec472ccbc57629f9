"""Every command fails with one clean line: a missing settings file, a database that cannot be opened or a
database URL that is not one, and any error nobody planned for (its traceback goes to a log file; ``--debug``
prints it). And ``broadcaster sandbox`` on a port in use names the port and the setting to change.
"""

from __future__ import annotations

import enum
import os
import socket
import tempfile
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from broadcaster.cli import app
from tests.broadcaster.conftest import ADMIN_LOGIN, FIXTURES
from tests.conftest import free_port

# Commands left out of a scenario, and why: each of them does its job without what the scenario breaks.
CREATES_ITS_OWN_WORKDIR = {"init", "demo"}
NEEDS_NO_DATABASE = {"sandbox", "campaigns validate", "demo", "queues"}
# Reports a database it cannot open as a finding (an unhealthy check, exit 1), not as an error
# (tests/broadcaster/delivery/test_health.py).
REPORTS_THE_DATABASE = {"health"}
NEEDS_NEITHER = {"audit keygen"}  # writes a new key file: reads no settings, no database
# Optional arguments some commands need here: init makes a new directory (the current one has settings).
EXTRA_ARGS = {"init": ["van-phong-moi"]}


def leaf_commands() -> dict[str, Any]:
    """Every command of the app, by its words (``campaigns test-send``), found by walking the typer app."""
    found: dict[str, Any] = {}

    def walk(command: Any, words: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, (*words, name))
        else:
            found[" ".join(words)] = command

    walk(typer.main.get_command(app), ())
    return found


def sample_value(name: str, annotation: Any) -> str:
    """A value the parser accepts for a required parameter, so that the command itself runs."""
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return str(next(iter(annotation)).value)
    if annotation is int:
        return "1"
    if annotation is Path:
        return str(FIXTURES / "danh-ba.csv")
    return {"campaign_id": "thong-bao-thu-nghiem", "to": "0912345678", "login": "bien_tap"}.get(name, "x")


def invocation(words: str, command: Any) -> list[str]:
    hints = typing.get_type_hints(command.callback)
    args = [*words.split(), *EXTRA_ARGS.get(words, [])]
    for param in command.params:
        if not param.required:
            continue
        annotation = hints.get(param.name)
        if typing.get_origin(annotation) is list:
            annotation = typing.get_args(annotation)[0]
        value = sample_value(param.name, annotation)
        args += [value] if param.param_type_name == "argument" else [param.opts[0], value]
    return args


@pytest.fixture
def no_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    """``broadcaster worker`` replaces the process with Celery once its checks pass: never in a test."""

    def refuse(*args: object) -> None:
        pytest.fail(f"worker would have started Celery: {args[:2]}")

    monkeypatch.setattr(os, "execvpe", refuse)


@pytest.fixture
def temp_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Error logs written outside a working directory land here instead of the machine's temp folder."""
    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def assert_one_clean_line(words: str, result: Any) -> str:
    output = result.stdout + result.stderr
    assert result.exit_code != 0, (words, output)
    assert "Traceback" not in output, (words, output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, (words, result.stderr)
    assert lines[0].startswith("error: "), (words, result.stderr)
    return str(lines[0])


SCENARIOS = ["missing settings file", "database cannot be opened", "not a database URL"]


@pytest.fixture(params=SCENARIOS)
def broken(
    request: pytest.FixtureRequest, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    scenario: str = request.param
    monkeypatch.setenv("COLUMNS", "80")  # long errors must stay one line, not wrap
    if scenario == "missing settings file":
        empty = tmp_path / "empty"
        empty.mkdir()
        monkeypatch.chdir(empty)
    else:
        monkeypatch.chdir(workdir)
        url = "sqlite:////khong-co-thu-muc/broadcaster.sqlite3" if "opened" in scenario else "khong-phai-url"
        monkeypatch.setenv("BROADCASTER_DATABASE__URL", url)
    return scenario


def test_every_command_fails_with_one_clean_line(broken: str, no_exec: None, temp_logs: Path) -> None:
    skipped = (
        CREATES_ITS_OWN_WORKDIR if broken == "missing settings file" else NEEDS_NO_DATABASE
    ) | NEEDS_NEITHER
    if broken == "database cannot be opened":
        skipped |= REPORTS_THE_DATABASE
    commands = leaf_commands()
    assert {"send", "sandbox", "users add", "campaigns test-send"} <= set(commands)  # the walk found them
    expected = {
        "missing settings file": "no settings file",
        "database cannot be opened": "cannot use the database",
        "not a database URL": "the database URL is not usable",
    }[broken]
    for words, command in sorted(commands.items()):
        if words in skipped:
            continue
        line = assert_one_clean_line(words, run(*invocation(words, command)))
        assert expected in line, (words, line)
        if broken == "database cannot be opened":
            assert "[database] url" in line, (words, line)
            assert "the traceback is in " in line, (words, line)


def status_failing_with(error: Exception, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``broadcaster status`` in ``workdir`` when reading the campaign raises ``error``: its one error line."""
    monkeypatch.chdir(workdir)

    def broken_status(*_args: object, **_kwargs: object) -> None:
        raise error

    monkeypatch.setattr("broadcaster.cli.status.campaign_status", broken_status)
    return assert_one_clean_line("status", run("status", "thong-bao-thu-nghiem"))


def test_an_unexpected_error_leaves_its_traceback_in_a_log_file(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, temp_logs: Path
) -> None:
    line = status_failing_with(KeyError("versions"), workdir, monkeypatch)
    assert "unexpected KeyError: 'versions'" in line
    assert "run again with --debug" in line
    log = Path(line.split("the traceback is in ", 1)[1].split(";", 1)[0])
    assert log.parent == workdir / "logs"  # next to the engine's logs
    text = log.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text
    assert "KeyError: 'versions'" in text

    debug = run("--debug", "status", "thong-bao-thu-nghiem")
    assert debug.exit_code == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "broken_status" in debug.stderr


def test_an_unexpected_error_outside_a_working_directory_logs_to_the_temp_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, temp_logs: Path, isolated_env: None
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("broadcaster.cli.load_settings", lambda _config: 1 / 0)
    line = assert_one_clean_line("db upgrade", run("db", "upgrade"))
    assert "unexpected ZeroDivisionError: division by zero" in line
    assert f"the traceback is in {temp_logs / 'broadcaster'}" in line


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("server", ["smtp", "smpp"])
def test_sandbox_on_a_port_in_use_names_the_port_and_the_setting(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, taken_port: int, server: str
) -> None:
    monkeypatch.chdir(workdir)
    ports = {"smtp": str(free_port()), "smpp": str(free_port()), server: str(taken_port)}
    result = run("sandbox", "--smtp-port", ports["smtp"], "--smpp-port", ports["smpp"])
    line = " ".join(assert_one_clean_line("sandbox", result).split())
    provider, option = ("mail", "--smtp-port") if server == "smtp" else ("sms_main", "--smpp-port")
    assert f"port {taken_port} on 127.0.0.1 is already in use" in line
    assert f"broadcaster sandbox {option} PORT" in line
    assert f"[providers.{provider}]" in line
    assert f"BROADCASTER_PROVIDERS__{provider.upper()}__PORT" in line


def test_the_sandbox_reads_only_the_settings(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sandbox is what one starts before anything works: it must not need the database (where there is
    one, its roles apply: tests/broadcaster/test_auditor_read_only.py)."""
    monkeypatch.chdir(workdir)
    monkeypatch.setattr("getpass.getuser", lambda: ADMIN_LOGIN)
    # A database that is not there yet: the sandbox starts (no identity to check, nothing created).
    missing = workdir / "chua-co" / "broadcaster.sqlite3"
    monkeypatch.setenv("BROADCASTER_DATABASE__URL", f"sqlite:///{missing}")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        result = run("sandbox", "--smtp-port", str(sock.getsockname()[1]))
    assert "already in use" in result.stderr
    assert not missing.exists()


def test_a_broker_out_of_reach_is_named_as_the_broker_not_the_database(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, temp_logs: Path
) -> None:
    """kombu's OperationalError shares its name with the database drivers' one; the line names the broker."""
    from kombu.exceptions import OperationalError

    line = status_failing_with(OperationalError("[Errno 111] Connection refused"), workdir, monkeypatch)
    assert "cannot reach the broker: [Errno 111] Connection refused" in line
    assert "[broker] url" in line
    assert "database" not in line
