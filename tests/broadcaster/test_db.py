"""Database layer: the UTC datetime column, SQLite pragmas on live connections, WAL, BEGIN IMMEDIATE."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, event, func, insert, select, text
from sqlalchemy.exc import StatementError

from broadcaster.context import AppContext
from broadcaster.db.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    enable_wal,
    make_engine,
    normalise_url,
    session_factory,
)
from broadcaster.db.models import AuditEntry
from broadcaster.db.types import UTCDateTime

HANOI = timezone(timedelta(hours=7))

scratch = MetaData()
moments = Table(
    "moments",
    scratch,
    Column("id", Integer, primary_key=True),
    Column("label", String(20)),
    Column("at", UTCDateTime()),
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'scratch.sqlite3'}")
    enable_wal(engine)
    scratch.create_all(engine)
    yield engine
    engine.dispose()


def test_aware_datetime_round_trips_as_utc(engine: Engine) -> None:
    local = datetime(2025, 6, 2, 8, 30, 15, 123456, tzinfo=HANOI)
    with engine.begin() as connection:
        connection.execute(insert(moments).values(label="local", at=local))
    with engine.connect() as connection:
        stored = connection.execute(select(moments.c.at)).scalar_one()
    assert stored == local
    assert stored.tzinfo is UTC
    assert stored == datetime(2025, 6, 2, 1, 30, 15, 123456, tzinfo=UTC)


def test_naive_datetime_is_refused_and_nothing_is_written(engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime") as caught, engine.begin() as connection:
        connection.execute(insert(moments).values(label="naive", at=datetime(2025, 6, 2, 8, 30)))  # noqa: DTZ001  the naive value refused
    assert isinstance(caught.value.orig, ValueError)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(moments)).scalar_one() == 0


def test_null_stays_null(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(insert(moments).values(label="none", at=None))
    with engine.connect() as connection:
        assert connection.execute(select(moments.c.at)).scalar_one() is None


def test_raw_sql_text_result_becomes_aware_utc(engine: Engine) -> None:
    moment = datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(insert(moments).values(label="raw", at=moment))
    with engine.connect() as connection:
        raw = connection.execute(text("SELECT at FROM moments")).scalar_one()
        typed = connection.execute(text("SELECT at FROM moments").columns(at=UTCDateTime())).scalar_one()
    assert isinstance(raw, str)  # SQLite stores text; the column type is what makes it a datetime
    assert typed == moment
    assert typed.tzinfo is UTC


def test_model_columns_are_aware_after_a_round_trip(context: AppContext) -> None:
    with context.sessions() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).first()
    assert entry is not None
    assert entry.action == "user.add"
    assert entry.at == context.clock.now()
    assert entry.at.tzinfo is UTC


def _pragma(engine: Engine, name: str) -> Any:
    with engine.connect() as connection:
        return connection.exec_driver_sql(f"PRAGMA {name}").scalar_one()


def test_sqlite_pragmas_on_a_live_connection(context: AppContext) -> None:
    busy_timeout = _pragma(context.engine, "busy_timeout")
    assert busy_timeout == SQLITE_BUSY_TIMEOUT_MS
    assert busy_timeout >= 30_000  # docs/architecture.md §3: at least 30 s
    assert _pragma(context.engine, "synchronous") == 1  # NORMAL
    assert _pragma(context.engine, "foreign_keys") == 1


def test_init_leaves_the_database_in_wal_mode(workdir: Path, context: AppContext) -> None:
    assert _pragma(context.engine, "journal_mode") == "wal"
    # WAL is a property of the file: a plain sqlite3 connection sees it too.
    import sqlite3

    raw = sqlite3.connect(workdir / "broadcaster.sqlite3")
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def test_write_transactions_begin_immediate(engine: Engine) -> None:
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    with session_factory(engine).begin() as session:
        session.execute(insert(moments).values(label="x", at=datetime.now(UTC)))
    assert statements[0] == "BEGIN IMMEDIATE"


def test_a_second_writer_waits_for_the_first_instead_of_failing(engine: Engine) -> None:
    """Read-then-write in two sessions: with deferred BEGIN the second fails with "database is locked"."""
    sessions = session_factory(engine)
    errors: list[BaseException] = []
    b_has_read = threading.Event()
    seen_by_b: list[int] = []

    def second_writer() -> None:
        try:
            with sessions.begin() as session:
                seen_by_b.append(session.scalar(select(func.count()).select_from(moments)) or 0)
                b_has_read.set()
                session.execute(insert(moments).values(label="b", at=datetime.now(UTC)))
        except BaseException as exc:  # reported to the main thread and asserted on
            errors.append(exc)
            b_has_read.set()

    with sessions.begin() as session:
        session.scalar(select(func.count()).select_from(moments))
        session.execute(insert(moments).values(label="a", at=datetime.now(UTC)))
        worker = threading.Thread(target=second_writer)
        worker.start()
        # B cannot even start reading while A's write transaction is open: it queues on BEGIN IMMEDIATE.
        assert not b_has_read.wait(0.5)
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert errors == []
    assert seen_by_b == [1]  # B began after A committed, so it saw A's row
    with engine.connect() as connection:
        labels = sorted(connection.execute(select(moments.c.label)).scalars())
    assert labels == ["a", "b"]


def test_many_concurrent_read_then_write_transactions_all_commit(engine: Engine) -> None:
    sessions = session_factory(engine)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(name: str) -> None:
        try:
            start.wait(timeout=10)
            for number in range(15):
                with sessions.begin() as session:
                    count = session.scalar(select(func.count()).select_from(moments)) or 0
                    session.execute(
                        insert(moments).values(label=f"{name}{number}:{count}", at=datetime.now(UTC))
                    )
        except BaseException as exc:  # reported to the main thread and asserted on
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name,)) for name in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with engine.connect() as connection:
        labels = list(connection.execute(select(moments.c.label)).scalars())
    assert len(labels) == 60
    # Every transaction saw every earlier commit: the counts read are exactly 0..59.
    assert sorted(int(label.split(":")[1]) for label in labels) == list(range(60))


def test_transaction_rolls_back_on_error(engine: Engine) -> None:
    def insert_then_fail() -> None:
        with session_factory(engine).begin() as session:
            session.execute(insert(moments).values(label="lost", at=datetime.now(UTC)))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        insert_then_fail()
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(moments)).scalar_one() == 0


def test_postgresql_urls_use_psycopg_3() -> None:
    assert normalise_url("postgresql://u:p@h:5432/db") == "postgresql+psycopg://u:p@h:5432/db"
    assert normalise_url("postgres://u@h/db").startswith("postgresql+psycopg://")
    assert normalise_url("sqlite:///x.sqlite3") == "sqlite:///x.sqlite3"
