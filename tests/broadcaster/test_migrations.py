"""Migrations match the models: after ``upgrade`` autogenerate finds nothing, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, select, text

from broadcaster import audit
from broadcaster.db.engine import make_engine, session_factory
from broadcaster.db.migrate import alembic_config, current_revision, pending_differences, upgrade
from broadcaster.db.migrations_support import target_metadata
from broadcaster.db.models import AuditEntry


def _expected_tables() -> set[str]:
    return {table for metadata in target_metadata() for table in metadata.tables}


def _downgrade(url: str, revision: str) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
    engine.dispose()


def _head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def _check_round_trip(url: str, engine: Engine) -> None:
    upgrade(url)
    assert current_revision(engine) == _head()
    assert _expected_tables() <= set(inspect(engine).get_table_names())
    assert pending_differences(engine) == []

    _downgrade(url, "base")
    assert current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

    upgrade(url)
    assert current_revision(engine) == _head()
    assert pending_differences(engine) == []


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'migrations.sqlite3'}"


def test_sqlite_upgrade_matches_models_and_downgrades(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        _check_round_trip(sqlite_url, engine)
    finally:
        engine.dispose()


def test_sqlite_upgrade_is_idempotent(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        assert current_revision(engine) == _head()
    finally:
        engine.dispose()


def test_autogenerate_sees_a_difference_when_there_is_one(sqlite_url: str) -> None:
    """The comparison is live: a column the models do not know is reported."""
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE users ADD COLUMN nickname VARCHAR(20)"))
        differences = pending_differences(engine)
    finally:
        engine.dispose()
    assert any("nickname" in repr(diff) for diff in differences)


def test_broker_tables_are_ignored(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE kombu_message (id INTEGER PRIMARY KEY, payload TEXT)"))
        assert pending_differences(engine) == []
    finally:
        engine.dispose()


@pytest.mark.services
def test_postgresql_upgrade_matches_models_and_downgrades(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        assert schema.startswith("bc_test_")
        _check_round_trip(postgres_url, engine)
        # timestamptz hands back the session's zone; the column type turns it into aware UTC.
        moment = datetime(2025, 6, 2, 8, 30, tzinfo=timezone(timedelta(hours=7)))
        with session_factory(engine).begin() as session:
            session.execute(text("SET TIME ZONE 'Asia/Ho_Chi_Minh'"))
            audit.record(session, at=moment, actor="a", action="x", subject_type="t", subject_id="1")
        with session_factory(engine)() as session:
            session.execute(text("SET TIME ZONE 'America/New_York'"))
            stored = session.scalars(select(AuditEntry.at)).one()
        assert stored == moment
        assert stored.tzinfo is UTC
    finally:
        engine.dispose()


def test_0004_counts_rows_in_flight_as_handed_over_and_allows_completed_with_held(sqlite_url: str) -> None:
    """Rows in sending during the upgrade may be at the provider: a crash after it must hold them, not resend
    them. The widened run status has its CHECK rebuilt on SQLite with the new value."""
    engine = make_engine(sqlite_url)
    try:
        with engine.begin() as connection:
            config = alembic_config(sqlite_url)
            config.attributes["connection"] = connection
            command.upgrade(config, "0003")
            for number, status in ((1, "sending"), (2, "queued")):
                connection.execute(
                    text(
                        "INSERT INTO messages (idempotency_key, kind, channel, provider, address, status, hold,"
                        " body, context, attempts, parts_total, parts_delivered, created_at, claimed_at)"
                        " VALUES (:key, 'test', 'sms', 'sms_main', '+84905000001', :status, 0, 'x', '{}', 1,"
                        " 0, 0, '2025-06-02 01:00:00', '2025-06-02 01:00:05')"
                    ),
                    {"key": f"k{number}", "status": status},
                )
        upgrade(sqlite_url)
        with engine.begin() as connection:
            handed: dict[str, object] = dict(
                connection.execute(text("SELECT status, handed_at FROM messages")).all()
            )
            check = connection.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'campaign_runs'")
            ).scalar_one()
        assert handed["sending"] is not None
        assert handed["queued"] is None
        assert "'completed_with_held'" in check
        assert "VARCHAR(24)" in check
    finally:
        engine.dispose()
