"""Migration 0007: every message gets the address key consent lists use and its campaign's purpose."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import Engine, text

from broadcaster.db.engine import make_engine
from broadcaster.db.migrate import alembic_config, upgrade


def _migrate(engine: Engine, url: str, revision: str, *, down: bool = False) -> None:
    with engine.begin() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def _seed_at_0006(engine: Engine, url: str) -> None:
    _migrate(engine, url, "0006")
    stamp = "2026-06-02 01:00:00"
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO campaigns (id, title, state, created_at, updated_at)"
                " VALUES ('qc-ban-tin', 'QC', 'approved', :at, :at)"
            ),
            {"at": stamp},
        )
        connection.execute(
            text(
                "INSERT INTO campaign_versions (id, campaign_id, number, content_hash, definition, templates,"
                " source_path, source_text, status, created_by, created_at, required_approvals)"
                " VALUES (7, 'qc-ban-tin', 1, 'h', :definition, '{}', 'c.yaml', '', 'approved', 'an', :at, 1)"
            ),
            {"definition": '{"purpose": "advertising"}', "at": stamp},
        )
        rows = [
            ("run:1:email:a", 7, "email", "An.Nguyen@Example.VN"),
            ("run:1:sms:b", 7, "sms", "+84905000001"),
            ("confirmation:1", None, "sms", "+84905000002"),  # a system message: no version, no purpose
        ]
        for key, version, channel, address in rows:
            connection.execute(
                text(
                    "INSERT INTO messages (idempotency_key, kind, version_id, channel, provider, address, status,"
                    " hold, attempts, body, context, parts_total, parts_delivered, created_at)"
                    " VALUES (:key, 'campaign', :version, :channel, 'p', :address, 'queued', 0, 0, 'x', '{}',"
                    " 0, 0, :at)"
                ),
                {"key": key, "version": version, "channel": channel, "address": address, "at": stamp},
            )


def test_0007_fills_address_key_and_purpose_and_downgrades(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    engine = make_engine(url)
    try:
        _seed_at_0006(engine, url)
        upgrade(url)
        with engine.begin() as connection:
            rows = connection.execute(
                text("SELECT idempotency_key, address, address_key, purpose FROM messages ORDER BY id")
            ).all()
        assert [tuple(row) for row in rows] == [
            ("run:1:email:a", "An.Nguyen@Example.VN", "an.nguyen@example.vn", "advertising"),
            ("run:1:sms:b", "+84905000001", "+84905000001", "advertising"),
            ("confirmation:1", "+84905000002", "+84905000002", None),
        ]
        _migrate(engine, url, "0006", down=True)
        with engine.begin() as connection:
            columns = {row[1] for row in connection.execute(text("PRAGMA table_info(messages)"))}
        assert not columns & {"address_key", "purpose"}
    finally:
        engine.dispose()
