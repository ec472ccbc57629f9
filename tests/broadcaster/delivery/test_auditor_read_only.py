"""The auditor reads and exports and changes nothing: every leaf command of the app, run as an auditor with
plausible arguments against a working directory full of data (contacts, an approved campaign sent through the
sandbox peers with its receipts, consent events, SMS replies in the staff inbox, audit entries), leaves the
database dump and the working directory's files as they were. Long-running commands refuse before starting.

The table below must list every command: a command added to the app without a line here fails the test, so
whoever adds one decides what an auditor may do with it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import select

from broadcaster.cli import app
from broadcaster.db.models import InboxReply
from broadcaster.users import add_user
from broadcaster.vocabulary import Role
from tests.broadcaster.conftest import FIXTURES, database_dump
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_subject_requests import EMAIL, PHONE, citizen_data, cli
from tests.broadcaster.delivery.workdir_files import SHIPPED_PROVIDERS
from tests.broadcaster.test_cli import Cli, one_line
from tests.conftest import free_port

__all__ = ["citizen_data", "cli", "pipeline"]  # the fixtures, shared with test_subject_requests

AUDITOR = "kiem_toan"
CAMPAIGN = "thong-bao-thu-nghiem"
OK, REFUSED, FAILS = 0, 1, -1  # FAILS: exit 1 for a reason other than the role (named in the line)

# words → (arguments, outcome) an auditor tries. {out} is a folder outside the working directory, {reply}
# the waiting inbox reply, {smtp}/{smpp}/{port} free ports. A REFUSED line must name the auditor's role.
AS_AUDITOR: dict[str, list[tuple[list[str], int]]] = {
    "status": [([CAMPAIGN, "--json"], OK)],
    "send": [([CAMPAIGN], REFUSED)],
    "run": [([], REFUSED), (["--once"], REFUSED)],
    "worker": [([], REFUSED), (["--gateway", "sms_main"], REFUSED), (["--inbound"], REFUSED)],
    "beat": [([], REFUSED)],
    "sandbox": [(["--smtp-port", "{smtp}", "--smpp-port", "{smpp}"], REFUSED)],
    "demo": [(["--dir", "{out}/demo", "--contacts", "5"], REFUSED)],
    "serve": [(["--port", "{port}"], REFUSED)],
    "backup": [(["{out}/copy.sqlite3"], REFUSED)],
    "health": [(["--only", "database", "--json"], OK)],
    "queues": [(["--json"], OK)],
    "metrics": [(["--port", "{port}"], REFUSED)],
    "init": [(["--force", "--yes"], REFUSED), (["."], FAILS)],
    "db upgrade": [([], OK)],  # at head: nothing to apply
    "db current": [(["--json"], OK)],
    "users add": [(["moi", "--role", "admin"], REFUSED)],
    "users set-role": [([AUDITOR, "admin"], REFUSED)],
    "users password": [([AUDITOR, "--password-stdin"], REFUSED)],
    "users list": [(["--json"], OK)],
    "apikeys create": [(["portal", "--role", "admin"], REFUSED)],
    "apikeys list": [(["--json"], REFUSED)],
    "apikeys revoke": [(["abcd1234", "--reason", "thử"], REFUSED)],
    "policy list": [(["--json"], OK)],
    "policy set": [(["allow_env_user", "true", "--reason", "thử"], REFUSED)],
    "contacts import": [([str(FIXTURES / "danh-ba.csv")], REFUSED)],
    "contacts list": [(["--json"], OK), (["--unmasked"], REFUSED)],
    "campaigns validate": [(["campaigns"], OK)],
    "campaigns load": [(["campaigns"], REFUSED)],
    "campaigns list": [(["--json"], OK)],
    "campaigns preview": [([CAMPAIGN, "--json"], OK)],
    "campaigns diff": [([CAMPAIGN, "1", "1", "--json"], OK)],
    "campaigns submit": [([CAMPAIGN], REFUSED)],
    "campaigns approve": [([CAMPAIGN, "--reason", "thử"], REFUSED)],
    "campaigns reject": [([CAMPAIGN, "--reason", "thử"], REFUSED)],
    "campaigns schedule": [([CAMPAIGN], REFUSED)],
    "campaigns pause": [([CAMPAIGN], REFUSED)],
    "campaigns resume": [([CAMPAIGN], REFUSED)],
    "campaigns cancel": [([CAMPAIGN], REFUSED)],
    "campaigns test-send": [([CAMPAIGN, "--to", "0912345678"], REFUSED)],
    "campaigns exclude": [([CAMPAIGN, str(FIXTURES / "danh-ba.csv")], REFUSED)],
    "campaigns exclusions": [([CAMPAIGN, "--json"], OK), ([CAMPAIGN, "--unmasked"], REFUSED)],
    "campaigns retry-failed": [([CAMPAIGN], REFUSED)],
    "consent show": [([PHONE, "--json"], OK)],
    "consent grant": [([PHONE, "--purpose", "advertising", "--notice", "v1", "--reason", "thử"], REFUSED)],
    "consent withdraw": [([PHONE, "--purpose", "advertising", "--reason", "thử"], REFUSED)],
    "consent dnc import": [([str(FIXTURES / "danh-ba.csv")], REFUSED)],
    "consent dnc status": [(["--json"], OK)],
    "inbox": [(["--json"], OK), (["--all"], OK)],
    "inbox done": [(["{reply}", "--reason", "thử"], REFUSED)],
    "bounces": [(["--port", "{port}"], REFUSED)],
    "bounces list": [(["--json"], OK), (["--unmasked"], REFUSED)],
    "activities record": [
        (
            ["--date", "2025-06-02", "--plan-item", "x", "--agency", "x", "--kind", "x", "--title", "x"],
            REFUSED,
        )
    ],
    "activities list": [(["--json"], OK)],
    # The open days' rollups are computed for the report and not stored.
    "report": [(["--from", "2025-06-01", "--to", "2025-06-30", "--out", "{out}/bao-cao.csv"], OK)],
    "report rollup": [([], REFUSED)],
    "subject export": [([PHONE, "--out", "{out}/nguoi.json"], REFUSED)],
    "subject erase": [([PHONE, "--reference", "HS-1", "--yes"], REFUSED)],
    "messages": [
        (["--json"], OK),
        (["--recipient", PHONE], OK),
        (["--format", "csv", "--out", "{out}/tin.csv"], OK),
        (["--format", "jsonl", "--out", "{out}/tin-day-du.jsonl", "--unmasked"], REFUSED),
    ],
    "messages release": [(["--dry-run"], REFUSED), (["--reason", "thử"], REFUSED)],
    "messages retry": [(["--dry-run"], REFUSED)],
    "messages drop": [(["--reason", "thử"], REFUSED)],
    "retention run": [(["--dry-run", "--json"], REFUSED), ([], REFUSED)],
    "audit verify": [([], OK), (["--json"], OK)],
    "audit anchor": [(["--out", "{out}/moc-nhat-ky.json"], OK)],
    "audit keygen": [(["--out", "{out}/khoa-ky.pem"], OK)],  # a key file outside the working directory
    "audit search": [
        ([], OK),
        (["--recipient", EMAIL, "--action", "campaign."], OK),
        (["--campaign", CAMPAIGN, "--format", "jsonl", "--out", "{out}/nhat-ky.jsonl"], OK),
    ],
}


def every_command() -> set[str]:
    """The words of every command that runs something: each leaf, and each group that runs on its own."""
    found: set[str] = set()

    def walk(command: Any, words: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            found.add(" ".join(words))
            return
        if words and getattr(command, "invoke_without_command", False):
            found.add(" ".join(words))
        for name, sub in subcommands.items():
            walk(sub, (*words, name))

    walk(typer.main.get_command(app), ())
    return found


def test_the_table_lists_every_command() -> None:
    commands = every_command()
    assert commands - AS_AUDITOR.keys() == set(), "add these commands to AS_AUDITOR (what may an auditor do?)"
    assert AS_AUDITOR.keys() - commands == set(), "these commands are gone: remove them from AS_AUDITOR"


def files_of(directory: Path) -> dict[str, str]:
    """Every file of the working directory but the databases, with a digest of its content."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and ".sqlite3" not in path.name
    }


@pytest.fixture
def pipeline(make_pipeline: PipelineFactory) -> Pipeline:
    """With the providers the shipped campaigns name, so that validating them is a command like the others."""
    return make_pipeline(providers=SHIPPED_PROVIDERS)


@pytest.fixture
def no_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    """``broadcaster worker`` replaces the process with Celery once its checks pass: never here."""
    monkeypatch.setattr(os, "execvpe", lambda *args: pytest.fail(f"worker started Celery: {args[:2]}"))


def test_no_command_run_by_an_auditor_changes_anything(
    pipeline: Pipeline, cli: Cli, citizen_data: int, tmp_path: Path, no_exec: None
) -> None:
    with pipeline.context.sessions.begin() as session:
        add_user(session, actor="quan_tri", login=AUDITOR, role=Role.AUDITOR, clock=pipeline.clock)
        reply = session.scalars(select(InboxReply.id)).first()
    out = tmp_path / "xuat"
    out.mkdir()
    values = {
        "out": str(out),
        "reply": str(reply),
        "smtp": str(free_port()),
        "smpp": str(free_port()),
        "port": str(free_port()),
    }
    engine = pipeline.context.engine
    ran: list[str] = []
    for words, tries in sorted(AS_AUDITOR.items()):
        for arguments, outcome in tries:
            args = [*words.split(), *(a.format(**values) for a in arguments)]
            database, files = database_dump(engine), files_of(pipeline.directory)
            result = cli(*args, user=AUDITOR, expect=OK if outcome == OK else 1)
            said = one_line(result.stderr)
            if outcome == REFUSED:
                assert "'auditor'" in said, (args, said)
            if outcome == FAILS:
                assert "already" in said, (args, said)
            assert database_dump(engine) == database, f"{args} changed the database"
            assert files_of(pipeline.directory) == files, f"{args} changed the working directory's files"
            ran.append(" ".join(args))
    assert len(ran) == sum(len(tries) for tries in AS_AUDITOR.values())
    # What was exported went where it was asked, and nowhere else; the refused export wrote nothing.
    assert sorted(p.name for p in out.iterdir()) == [
        "bao-cao.csv",
        "khoa-ky.pem",
        "moc-nhat-ky.json",
        "nhat-ky.jsonl",
        "tin.csv",
    ]
    assert PHONE.lstrip("+") not in (out / "tin.csv").read_text(encoding="utf-8")
