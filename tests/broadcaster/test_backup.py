"""``broadcaster backup FILE`` (broadcaster/db/backup.py): an online SQLite copy taken while another connection
writes is one consistent snapshot that passes ``PRAGMA integrity_check``; PostgreSQL is refused with the pg_dump
procedure; an existing file is kept unless ``--force``."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from broadcaster.cli import app
from broadcaster.clock import FrozenClock
from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry, InboundRecord
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.peers.polling import wait_until


def cli(*args: str, expect: int = 0, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr("getpass.getuser", lambda: ADMIN_LOGIN)
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == expect, (args, result.stdout, result.stderr, result.exception)
    return " ".join((result.stdout if expect == 0 else result.stderr).split())


class PairWriter(threading.Thread):
    """Commits inbound records two per transaction until stopped: a consistent copy holds an even number."""

    def __init__(self, context: AppContext) -> None:
        super().__init__(daemon=True)
        self.context = context
        self.stop = threading.Event()
        self.committed = 0

    def run(self) -> None:
        while not self.stop.is_set():
            with self.context.sessions.begin() as session:
                session.add_all(
                    InboundRecord(
                        provider="sms_main",
                        channel="sms",
                        received_at=self.context.clock.now(),
                        payload={"n": n},
                    )
                    for n in range(2)
                )
            self.committed += 2


def test_a_copy_taken_while_writes_go_on_is_whole_and_consistent(
    context: AppContext, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    writer = PairWriter(context)
    writer.start()
    try:
        wait_until(lambda: writer.committed >= 200, timeout=60, what="writes going on")
        before = writer.committed
        out = cli("backup", str(tmp_path / "copy.sqlite3"), monkeypatch=monkeypatch)
        wait_until(lambda: writer.committed > before + 20, timeout=60, what="writes going on after the copy")
    finally:
        writer.stop.set()
        writer.join()
    assert "integrity check passed" in out
    assert not list(tmp_path.glob(".copy.sqlite3.partial-*"))
    with contextlib.closing(sqlite3.connect(tmp_path / "copy.sqlite3")) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        (copied,) = copy.execute("SELECT count(*) FROM inbound_records").fetchone()
        (users,) = copy.execute("SELECT count(*) FROM users WHERE login = ?", (ADMIN_LOGIN,)).fetchone()
    assert before <= copied < writer.committed
    assert copied % 2 == 0  # never half a transaction
    assert users == 1
    with context.sessions() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "backup.run"))
        assert entry is not None
        assert entry.details["target"] == str(tmp_path / "copy.sqlite3")
        assert session.scalar(select(func.count()).select_from(InboundRecord)) == writer.committed


def test_an_existing_file_is_kept_unless_forced(
    context: AppContext, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    target = tmp_path / "copy.sqlite3"
    target.write_text("an older copy")
    message = cli("backup", str(target), expect=1, monkeypatch=monkeypatch)
    assert str(target) in message
    assert "--force" in message
    assert target.read_text() == "an older copy"
    cli("backup", str(target), "--force", monkeypatch=monkeypatch)
    with contextlib.closing(sqlite3.connect(target)) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_postgresql_is_refused_with_the_pg_dump_procedure(
    workdir: Path, clock: FrozenClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("BROADCASTER_DATABASE__URL", "postgresql://broadcaster@127.0.0.1:5432/broadcaster")
    message = cli("backup", str(tmp_path / "copy.sqlite3"), expect=1, monkeypatch=monkeypatch)
    assert "pg_dump --format=custom" in message
    assert "docs/deployment.md" in message
    assert not (tmp_path / "copy.sqlite3").exists()
