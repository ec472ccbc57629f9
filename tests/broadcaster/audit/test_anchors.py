"""`audit anchor` exports each Da Nang day's chain head, signed; `audit verify --anchor` catches a log
rewritten with every hash recomputed (which plain `verify` cannot), a changed anchor file, a foreign key."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from broadcaster.clock import LOCAL_TZ
from broadcaster.users import add_user
from broadcaster.vocabulary import Role
from tests.broadcaster.audit.conftest import (
    HEAD,
    LOG,
    Installation,
    cli_in,
    rechain_from,
    row,
    set_row,
    triggers_off,
    write_log,
)
from tests.broadcaster.conftest import ADMIN_LOGIN, database_dump
from tests.broadcaster.test_cli import Cli, one_line


@pytest.fixture
def signed(installation: Installation, monkeypatch: pytest.MonkeyPatch) -> tuple[Installation, Cli]:
    """A log over several days (SQLite or PostgreSQL), a signing key made by keygen and configured, the clock
    two days on."""
    write_log(installation, 20, per_transaction=2)
    installation.clock.advance(timedelta(days=2))
    cli = cli_in(installation, monkeypatch)
    made = one_line(cli("audit", "keygen", "--out", "keys/ky.pem", expect=1).stderr)
    assert "--out" in made  # the folder does not exist: said, nothing written
    (installation.directory / "keys").mkdir()
    out = one_line(cli("audit", "keygen", "--out", "keys/ky.pem").stdout)
    assert "Public key (base64):" in out
    assert 'signing_key = "' in out
    config = installation.directory / "broadcaster.toml"
    config.write_text(config.read_text() + '\n[audit]\nsigning_key = "keys/ky.pem"\n', encoding="utf-8")
    return installation, cli


def test_keygen_writes_a_private_file_and_never_overwrites(signed: tuple[Installation, Cli]) -> None:
    installation, cli = signed
    key = installation.directory / "keys" / "ky.pem"
    before = key.read_bytes()
    assert before.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    refused = one_line(cli("audit", "keygen", "--out", "keys/ky.pem", expect=1).stderr)
    assert "already exists" in refused
    assert key.read_bytes() == before


def test_an_anchor_holds_each_days_last_entry_and_verifies(signed: tuple[Installation, Cli]) -> None:
    installation, cli = signed
    said = one_line(cli("audit", "anchor", "--out", "moc.json").stdout)
    assert "signed with" in said
    document = json.loads((installation.directory / "moc.json").read_text(encoding="utf-8"))
    days = document["days"]
    assert len(days) == 3  # 10 transactions 5 hours apart from 08:00 on the first day
    last_of_day: dict[str, int] = {}
    for entry_id in range(1, days[-1]["entry_id"] + 1):
        at = row(installation.engine, entry_id)["at"].astimezone(LOCAL_TZ)
        last_of_day[at.date().isoformat()] = entry_id
    assert {day["day"]: day["entry_id"] for day in days} == last_of_day
    for day in days:
        assert day["entry_hash"] == row(installation.engine, day["entry_id"])["entry_hash"]
    assert document["signature"]
    assert document["fingerprint"].startswith("SHA256:")

    result = one_line(cli("audit", "verify", "--anchor", "moc.json").stdout)
    assert "signature: valid" in result
    assert "Every day in the anchor matches the log" in result
    assert "[audit] signing_key" in result  # which key checked it


def test_a_rewritten_log_passes_verify_but_not_the_anchor(signed: tuple[Installation, Cli]) -> None:
    installation, cli = signed
    cli("audit", "anchor", "--out", "moc.json")
    days = json.loads((installation.directory / "moc.json").read_text(encoding="utf-8"))["days"]
    target = days[1]["entry_id"] - 1  # an entry of the second day, before that day's anchored head
    triggers_off(installation.engine)
    set_row(installation.engine, target, reason="đã được viết lại")
    rechain_from(installation.engine, target)

    cli("audit", "verify")  # the chain alone is consistent again
    result = one_line(cli("audit", "verify", "--anchor", "moc.json", expect=1).stdout)
    anchored_day = days[1]["day"]
    day = f"{anchored_day[8:10]}/{anchored_day[5:7]}/{anchored_day[:4]}"
    assert f"Day {day}: entry #{days[1]['entry_id']} now has hash" in result
    assert f"{len(days) - 1} days do not match" in result  # every later day's head moved with it
    assert "signature: valid" in result


def test_a_changed_anchor_file_or_another_key_fails_the_signature(
    signed: tuple[Installation, Cli], tmp_path: Path
) -> None:
    installation, cli = signed
    cli("audit", "anchor", "--out", "moc.json")
    path = installation.directory / "moc.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["installation"] = "Một cơ quan khác"
    (installation.directory / "sua.json").write_text(
        json.dumps(document, ensure_ascii=False), encoding="utf-8"
    )
    result = one_line(cli("audit", "verify", "--anchor", "sua.json", expect=1).stdout)
    assert "signature: NOT valid" in result

    cli("audit", "keygen", "--out", str(tmp_path / "khac.pem"))
    other = tmp_path / "khac.pub"
    public = cli("audit", "keygen", "--out", str(tmp_path / "khac2.pem")).stdout
    other.write_text(public.split("Public key (base64): ")[1].split()[0], encoding="utf-8")
    result = one_line(
        cli("audit", "verify", "--anchor", "moc.json", "--public-key", str(other), expect=1).stdout
    )
    assert f"--public-key {other}" in result
    assert "signature: NOT valid" in result


def test_an_unsigned_anchor_is_reported_unsigned(
    sqlite_installation: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_log(sqlite_installation, 6)
    sqlite_installation.clock.advance(timedelta(days=1))
    cli = cli_in(sqlite_installation, monkeypatch)
    assert "NOT SIGNED" in one_line(cli("audit", "anchor", "--out", "moc.json").stdout)
    result = one_line(cli("audit", "verify", "--anchor", "moc.json").stdout)
    assert "signature: unsigned" in result
    assert "valid" not in result
    report = cli.json("audit", "verify", "--anchor", "moc.json")
    assert report["anchors"][0]["signature"] == "unsigned"


def test_the_anchor_range_ends_yesterday(
    sqlite_installation: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_log(sqlite_installation, 6)
    cli = cli_in(sqlite_installation, monkeypatch)
    today = sqlite_installation.clock.now().astimezone(LOCAL_TZ).date()
    refused = one_line(cli("audit", "anchor", "--to", today.isoformat(), expect=1).stderr)
    assert "--to" in refused
    assert "has not ended" in refused
    printed = json.loads(cli("audit", "anchor").stdout)
    assert all(day["day"] < today.isoformat() for day in printed["days"])


def test_a_log_cut_short_with_its_head_moved_back_fails_the_anchor(signed: tuple[Installation, Cli]) -> None:
    installation, cli = signed
    cli("audit", "anchor", "--out", "moc.json")
    days = json.loads((installation.directory / "moc.json").read_text(encoding="utf-8"))["days"]
    keep = days[-1]["entry_id"] - 1  # the last anchored entry and everything after it removed
    triggers_off(installation.engine)
    with installation.engine.begin() as connection:
        connection.execute(delete(LOG).where(LOG.c.id > keep))
        last_hash = connection.execute(select(LOG.c.entry_hash).where(LOG.c.id == keep)).scalar_one()
        connection.execute(update(HEAD).values(last_id=keep, last_hash=last_hash))

    cli("audit", "verify")  # consistent again on its own
    result = one_line(cli("audit", "verify", "--anchor", "moc.json", expect=1).stdout)
    anchored = days[-1]["day"]
    assert (
        f"Day {anchored[8:10]}/{anchored[5:7]}/{anchored[:4]}: entry #{keep + 1} is no longer in the log"
        in result
    )


def test_an_auditor_verifies_and_anchors_without_changing_anything(signed: tuple[Installation, Cli]) -> None:
    installation, cli = signed
    with installation.context.sessions.begin() as session:
        add_user(session, actor=ADMIN_LOGIN, login="kiem_toan", role=Role.AUDITOR, clock=installation.clock)
    before = database_dump(installation.engine)
    cli("audit", "anchor", "--out", "moc.json", user="kiem_toan")
    cli("audit", "verify", "--anchor", "moc.json", user="kiem_toan")
    assert cli.json("audit", "verify", user="kiem_toan")["ok"] is True
    assert database_dump(installation.engine) == before
