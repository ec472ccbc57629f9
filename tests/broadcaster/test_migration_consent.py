"""Migration 0005: the contacts' opt-out flags become withdrawals in the consent ledger, then disappear."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text

from broadcaster.db.engine import make_engine
from broadcaster.db.migrate import alembic_config, upgrade

# (phone, e-mail, sms_opt_out, email_opt_out)
CONTACTS = [
    ("+84905000001", "An.Nguyen@Example.vn", True, True),
    ("+84905000002", "binh@example.vn", False, True),
    ("+84905000003", None, True, False),
    ("+84905000004", "chi@example.vn", False, False),
    (None, "an.nguyen@example.vn", False, True),  # the first contact's address in another spelling
]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'consent.sqlite3'}"


def _migrate(engine: Engine, url: str, revision: str, *, down: bool = False) -> None:
    with engine.begin() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def _contacts_at_0004(engine: Engine, url: str) -> None:
    _migrate(engine, url, "0004")
    with engine.begin() as connection:
        for number, (phone, email, sms_out, email_out) in enumerate(CONTACTS, start=1):
            connection.execute(
                text(
                    "INSERT INTO contacts (full_name, phone, email, language, tags, attributes, sms_opt_out,"
                    " email_opt_out, created_at, updated_at)"
                    " VALUES (:name, :phone, :email, 'vi', '[]', '{}', :sms, :mail, '2025-06-02 01:00:00',"
                    " '2025-06-02 01:00:00')"
                ),
                {
                    "name": f"Người {number}",
                    "phone": phone,
                    "email": email,
                    "sms": sms_out,
                    "mail": email_out,
                },
            )


def test_0005_moves_every_opt_out_into_the_ledger_and_drops_the_flags(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        _contacts_at_0004(engine, sqlite_url)
        upgrade(sqlite_url)
        with engine.begin() as connection:
            events = connection.execute(
                text(
                    "SELECT channel, address, purpose, action, source, notice_version, recorded_by"
                    " FROM consent_events ORDER BY id"
                )
            ).all()
            evidence = connection.execute(text("SELECT evidence FROM consent_events")).scalars().all()
        columns = {column["name"] for column in inspect(engine).get_columns("contacts")}
        assert not columns & {"sms_opt_out", "email_opt_out"}
        withdrawn = {(channel, address, purpose) for channel, address, purpose, *_rest in events}
        assert withdrawn == {
            (channel, address, purpose)
            for channel, address in (
                ("sms", "+84905000001"),
                ("sms", "+84905000003"),
                ("email", "an.nguyen@example.vn"),
                ("email", "binh@example.vn"),
            )
            for purpose in ("public_information", "advertising")
        }
        assert len(events) == len(withdrawn)  # one address, one withdrawal per purpose
        assert {tuple(e[3:]) for e in events} == {("withdraw", "migration", None, "migration 0005")}
        assert all(e.startswith("contacts.") for e in evidence)
    finally:
        engine.dispose()


def test_0005_downgrade_brings_the_flags_back(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        _contacts_at_0004(engine, sqlite_url)
        upgrade(sqlite_url)
        _migrate(engine, sqlite_url, "0004", down=True)
        with engine.begin() as connection:
            flags = connection.execute(
                text("SELECT sms_opt_out, email_opt_out FROM contacts ORDER BY id")
            ).all()
        assert [tuple(bool(v) for v in row) for row in flags] == [
            (True, True),
            (False, True),
            (True, False),
            (False, False),
            (False, True),
        ]
        assert "consent_events" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
