"""The README's "Quick start" and "Working with it", run line by line as a new user would paste them.

The commands are read from README.md itself (its ``sh`` blocks), so the test fails when the README drifts
from what works. They run in one bash session, as in a terminal: in a copy of the repository's tracked
files (its ``.venv`` linked in), with a fresh HOME, a PATH without the venv, and a contacts file saved where
the README says. What stands in for the person at the keyboard is listed in ``Session.prepare``: the contacts
file, copying the hash that ``submit`` printed into ``<hash>``, and waiting for the sandbox to listen.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer

from broadcaster.cli import app
from tests.conftest import free_port
from tests.peers.polling import wait_until

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

CONTACTS = """\ufeffHọ và tên,Số điện thoại,Thư điện tử,Nhóm,Quận/Huyện
Nguyễn Văn An,0905 123 456,an.nguyen@example.vn,citizen,Hải Châu
Trần Thị Bình,0912345678,,civil_servant,Sơn Trà
Lê Văn Cường,0935 000 111,Cuong.Le@Example.vn,citizen,Thanh Khê
Phạm Thị Dung,,dung.pham@example.vn,,Liên Chiểu
"""


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match is not None, f"README.md has no '## {title}' section"
    return match.group(1)


def shell_lines(text: str) -> list[str]:
    """The command lines of the ``sh`` blocks, in order (blank lines dropped, comments kept for bash)."""
    blocks = re.findall(r"^```sh\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def has_command(name: str) -> bool:
    return name in getattr(typer.main.get_command(app), "commands", {})


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Shell:
    """One bash session fed line by line; each line's output and exit status come back in order."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],  # noqa: S607  the shell that runs the README's commands
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            start_new_session=True,  # its own process group: whatever it leaves running is stopped at close
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)

    def run(self, command: str, *, timeout: float = 240) -> tuple[int, str]:
        assert self.process.stdin is not None
        marker = f"__line_done_{uuid.uuid4().hex}__"
        self.process.stdin.write(f"{command}\necho {marker} $?\n")
        self.process.stdin.flush()
        output: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"no end of {command!r} after {timeout} s; output so far:\n{''.join(output)}")
            if marker in line:
                before, _, status = line.partition(marker)
                output.append(before)
                return int(status.split()[0]), "".join(output)
            output.append(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):  # a sandbox left behind by a failed line
                os.killpg(self.process.pid, signal.SIGKILL)


class Session:
    """The README's lines as a person runs them, with what that person does between them."""

    def __init__(self, shell: Shell, home: Path, ports: tuple[int, int]) -> None:
        self.shell = shell
        self.home = home
        self.ports = ports
        self.transcript: list[str] = []

    def prepare(self, line: str) -> str:
        if "contacts import danh-ba.csv" in line:  # "Save your contacts file as ~/office/danh-ba.csv first"
            (self.home / "office" / "danh-ba.csv").write_text(CONTACTS, encoding="utf-8")
        if "<hash>" in line:  # "the content hash that submit printed"
            hashes = re.findall(r"(?:hash|mã băm) ([0-9a-f]{12})", "".join(self.transcript))
            assert hashes, "no hash printed before a line that needs one"
            line = line.replace("<hash>", hashes[-1])
        return line

    def run(self, line: str) -> str:
        status, output = self.shell.run(self.prepare(line))
        self.transcript.append(output)
        assert status == 0, f"README line failed (exit {status}): {line}\n{output}"
        if line.startswith("broadcaster sandbox &"):
            assert wait_until(lambda: all(listening(port) for port in self.ports), timeout=60)
        if line.startswith("kill %1"):  # the sandbox stops
            assert wait_until(lambda: not any(listening(port) for port in self.ports), timeout=60)
        return output


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's tracked files as a fresh clone has them, with the installed ``.venv`` linked in
    (``make`` sees it up to date: the copies keep their modification times)."""
    target = tmp_path_factory.mktemp("readme") / "broadcaster"
    listed = subprocess.run(
        ["git", "ls-files", "-z"],  # noqa: S607  git from PATH lists the repository
        cwd=REPO,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(REPO / ".venv", target_is_directory=True)
    return target


def fresh_env(home: Path, **extra: str) -> dict[str, str]:
    """A new user's terminal: no venv on PATH, no BROADCASTER_* settings, a home of their own."""
    home.mkdir(parents=True, exist_ok=True)
    return {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "COLUMNS": "200", **extra}


@pytest.fixture
def shell_in(clone: Path) -> Iterator[Callable[[dict[str, str]], Shell]]:
    """``shell_in(env)``: a bash session in the clone, stopped (with all it started) after the test."""
    shells: list[Shell] = []

    def start(env: dict[str, str]) -> Shell:
        shells.append(Shell(clone, env))
        return shells[-1]

    yield start
    for shell in shells:
        shell.close()


@pytest.mark.slow
def test_quick_start_as_printed(clone: Path, shell_in: Callable[[dict[str, str]], Shell]) -> None:
    lines = shell_lines(section("Quick start"))
    assert [line.split("#")[0].strip() for line in lines] == ["make demo", "make test"]
    shell = shell_in(fresh_env(clone.parent / "home-quick"))

    status, output = shell.run(lines[0])
    assert status == 0, output
    assert "theo kênh" in output  # a new user's terminal (LANG=C.UTF-8): Vietnamese, the default
    hint = output.rstrip("\n").splitlines()[-1]
    # `make test` itself would run this test again inside itself: check only what it would run.
    status, planned = shell.run("make -n test", timeout=60)
    assert status == 0, planned
    assert ".venv/bin/python -m pytest" in planned
    # The demo's closing hint, pasted as printed from where the user is (it goes into demo-workdir).
    status, pasted = shell.run(hint, timeout=60)
    assert status == 0, pasted
    # The demo campaign is one-off: it completes with its run.
    assert "Trạng thái: đã hoàn thành" in pasted


@pytest.mark.slow
def test_working_with_it_as_printed(clone: Path, shell_in: Callable[[dict[str, str]], Shell]) -> None:
    lines = shell_lines(section("Working with it"))
    assert lines[0].startswith('export PATH="$PWD/.venv/bin:$PATH"')
    home = clone.parent / "home-office"
    smtp, smpp = free_port(), free_port()
    # The sandbox and the providers on free ports: other tests may hold the configured 2525 and 2775.
    env = fresh_env(
        home,
        BROADCASTER_PROVIDERS__MAIL__PORT=str(smtp),
        BROADCASTER_PROVIDERS__SMS_MAIN__PORT=str(smpp),
    )
    session = Session(shell_in(env), home, (smtp, smpp))

    outputs = {line: session.run(line) for line in lines}

    assert not (clone / "office").exists()
    assert (home / "office" / "broadcaster.toml").is_file()
    imported = next(out for line, out in outputs.items() if "contacts import" in line)
    assert "1 dòng chưa có nhóm đối tượng" in " ".join(imported.split())
    sent = next(out for line, out in outputs.items() if " send " in line)
    assert re.search(r"email\s+\S+\s+\S+", sent)
    mails = list((home / "office" / "sandbox" / "mail").glob("*.eml"))
    assert len(mails) >= 3  # the test mail, and the campaign's two addresses
    ticked = next(out for line, out in outputs.items() if "run --once" in line)
    assert "TickReport" not in ticked
