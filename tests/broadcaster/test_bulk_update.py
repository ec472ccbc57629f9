"""``update_by_id`` (broadcaster/db/bulk.py): one statement per page on PostgreSQL, the same rows changed as an
executemany of the same update would change them, on SQLite and on PostgreSQL. ``insert_ignoring_conflicts``
converts each value itself on its fast paths (SQLite's multi-row ``VALUES`` through the driver, PostgreSQL's
``COPY``): a planned message stored through them has the same stored form, column by column, as SQLAlchemy's
own insert of the same row gives it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.orm import Session

from broadcaster.db import bulk
from broadcaster.db.base import Base
from broadcaster.db.bulk import insert_ignoring_conflicts, insert_rows, one_of, update_by_id
from broadcaster.db.engine import make_engine
from broadcaster.db.models import Message
from broadcaster.db.types import UTCDateTime
from broadcaster.vocabulary import MessageKind, MessageStatus

METADATA = MetaData()
THINGS = Table(
    "bulk_things",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("status", String(20), nullable=False),
    Column("reason", String(200)),
    Column("tally", Integer),
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'bulk.sqlite3'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    made = make_engine(url)
    METADATA.create_all(made)
    with made.begin() as connection:
        connection.execute(insert(THINGS), [{"id": i, "status": "sent", "tally": 0} for i in range(1, 8)])
    yield made
    made.dispose()


def _rows(engine: Engine) -> dict[int, tuple[str, str | None, int | None]]:
    with engine.connect() as connection:
        return {r.id: (r.status, r.reason, r.tally) for r in connection.execute(select(THINGS))}


def _statements(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, statement, *_a: seen.append(statement))
    return seen


def test_guarded_updates_change_only_rows_the_guard_lets_through_and_a_repeated_id_in_order(
    engine: Engine,
) -> None:
    with engine.begin() as connection:
        connection.execute(THINGS.update().where(THINGS.c.id == 3).values(status="failed"))
    rows: list[dict[str, Any]] = [
        {"b_id": 1, "b_reason": None},
        {"b_id": 2, "b_reason": "first"},
        {"b_id": 3, "b_reason": "guarded out"},
        {"b_id": 2, "b_reason": "second"},  # the guard refuses it once the first has moved the row
        {"b_id": 42, "b_reason": "no such row"},
    ]
    with Session(engine) as session, session.begin():
        update_by_id(
            session,
            THINGS,
            rows,
            from_row={"reason": "b_reason"},
            constants={"status": "delivered"},
            where=[one_of(THINGS.c.status, ["sent", "unknown"])],
        )

    found = _rows(engine)
    assert found[1] == ("delivered", None, 0)
    assert found[2] == ("delivered", "first", 0)
    assert found[3] == ("failed", None, 0)
    assert found[4] == ("sent", None, 0)


def test_an_unguarded_repeated_id_ends_with_its_last_row(engine: Engine) -> None:
    rows = [{"b_id": 5, "b_n": 1}, {"b_id": 6, "b_n": 1}, {"b_id": 5, "b_n": 2}, {"b_id": 5, "b_n": 3}]
    with Session(engine) as session, session.begin():
        update_by_id(session, THINGS, rows, from_row={"tally": "b_n"})

    found = _rows(engine)
    assert (found[5][2], found[6][2], found[7][2]) == (3, 1, 0)


def test_only_changes_leaves_a_row_that_already_holds_the_values(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(THINGS.update().where(THINGS.c.id == 2).values(tally=5))
    rows: list[dict[str, Any]] = [
        {"b_id": 1, "b_n": 5},
        {"b_id": 2, "b_n": 5},
        {"b_id": 3, "b_n": None},
        {"b_id": 4, "b_n": 0},
    ]
    with Session(engine) as session, session.begin():
        update_by_id(
            session,
            THINGS,
            rows,
            from_row={"tally": "b_n"},
            constants={"reason": "touched"},
            only_changes=True,
        )

    found = _rows(engine)
    assert found[1] == ("sent", "touched", 5)
    assert found[2] == ("sent", None, 5)  # already 5: not touched
    assert found[3] == ("sent", "touched", None)  # NULL is a change from 0
    assert found[4] == ("sent", None, 0)


@pytest.mark.services
def test_postgresql_gets_one_statement_per_page(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(postgres_url)
    METADATA.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(THINGS), [{"id": i, "status": "sent", "tally": 0} for i in range(1, 251)])
    monkeypatch.setattr(bulk, "ROWS_PER_STATEMENT", 100)
    statements = _statements(engine)
    with Session(engine) as session, session.begin():
        update_by_id(
            session, THINGS, [{"b_id": i, "b_n": i} for i in range(1, 251)], from_row={"tally": "b_n"}
        )

    updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 3
    assert all(count == key for key, (_s, _r, count) in _rows(engine).items())
    engine.dispose()


RECORDS = Table(
    "bulk_records",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("key", String(20), unique=True),
    Column("payload", JSON),
    Column("at", UTCDateTime()),
)


def test_inserted_rows_keep_their_json_timestamps_and_nulls_and_a_conflict_is_skipped(engine: Engine) -> None:
    at = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
    first: list[dict[str, Any]] = [
        {"key": "a", "payload": {"sm": "id:1 stat:DELIVRD", "tlv": [1, 2]}, "at": at},
        {"key": "b", "payload": None, "at": None},
    ]
    with Session(engine) as session, session.begin():
        insert_rows(session, RECORDS, first)
        insert_ignoring_conflicts(
            session,
            RECORDS,
            [{"key": "a", "payload": {"again": True}, "at": at}, {"key": "c", "payload": [], "at": at}],
            conflict=["key"],
        )

    with engine.connect() as connection:
        stored = {r.key: (r.payload, r.at) for r in connection.execute(select(RECORDS))}
    assert stored == {
        "a": ({"sm": "id:1 stat:DELIVRD", "tlv": [1, 2]}, at),
        "b": (None, None),
        "c": ([], at),
    }


def test_sqlite_inserts_ignoring_conflicts_as_multi_row_statements_in_the_rows_order(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'bulk.sqlite3'}")
    METADATA.create_all(engine)
    rows: list[dict[str, Any]] = [{"key": f"k{n}", "payload": {"n": n}, "at": None} for n in range(2500)]
    rows.insert(1000, {"key": "k7", "payload": {"n": "again"}, "at": None})  # a conflict inside the call
    statements = _statements(engine)
    with Session(engine) as session, session.begin():
        insert_ignoring_conflicts(session, RECORDS, rows, conflict=["key"])

    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    assert 1 < len(inserts) <= 3  # a few multi-row statements, not one per row
    with engine.connect() as connection:
        stored = [(r.key, r.payload) for r in connection.execute(select(RECORDS).order_by(RECORDS.c.id))]
    assert stored == [(f"k{n}", {"n": n}) for n in range(2500)]  # ids in the rows' order, the first k7 kept
    engine.dispose()


def test_a_large_insert_ignoring_conflicts_keeps_the_rows_order_and_values_and_counts_what_it_inserted(
    engine: Engine,
) -> None:
    """Past ``COPY_FROM`` rows PostgreSQL takes them through ``COPY``: the same rows as the other paths."""
    at = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
    rows: list[dict[str, Any]] = [
        {"key": f"k{n}", "payload": {"n": n, "text": 'Đà Nẵng\t\\ "x"\n'} if n % 3 else None, "at": at}
        for n in range(bulk.COPY_FROM + 50)
    ]
    again: dict[str, Any] = {"key": "k7", "payload": {"n": "again"}, "at": None}
    rows.insert(100, again)  # a conflict inside the call
    with Session(engine) as session, session.begin():
        insert_rows(session, RECORDS, [{"key": "k3", "payload": {"n": "first"}, "at": None}])
        inserted = insert_ignoring_conflicts(session, RECORDS, rows, conflict=["key"])

    assert inserted == bulk.COPY_FROM + 50 - 1  # k3 was there, the second k7 is skipped
    with engine.connect() as connection:
        stored = [
            (r.key, r.payload, r.at) for r in connection.execute(select(RECORDS).order_by(RECORDS.c.id))
        ]
    kept = [
        (row["key"], row["payload"], row["at"]) for row in rows if row["key"] != "k3" and row is not again
    ]
    assert stored == [("k3", {"n": "first"}, None), *kept]


MESSAGES: Table = Message.__table__  # type: ignore[assignment]
AT = datetime(2026, 12, 1, 1, 30, 15, 123456, tzinfo=UTC)
HANOI = timezone(timedelta(hours=7))


def _message(n: int) -> dict[str, Any]:
    """A planner's row (``outbox/planner.py``), its values varied by ``n``: each kind of column, None or not."""
    email = n % 2 == 0
    suppressed = n % 5 == 0
    return {
        "idempotency_key": f"run:1:{'email' if email else 'sms'}:{n}",
        "kind": MessageKind.CAMPAIGN,
        "run_id": None,
        "campaign_id": None,
        "version_id": None,
        "contact_id": None,
        "chunk_id": None,
        "channel": "email" if email else "sms",
        "provider": "mail" if email else "sms_main",
        "address": f"Nguoi.{n}@Example.vn" if email else f"+8490{n:07d}",
        "address_key": f"nguoi.{n}@example.vn" if email else f"+8490{n:07d}",
        "purpose": "public_information",
        "status": MessageStatus.SUPPRESSED if suppressed else MessageStatus.QUEUED,
        "hold": n % 7 == 0,
        "reason": "đã từ chối nhận tin" if suppressed else None,
        "error_code": None,
        "not_before": None if n % 3 else AT.astimezone(HANOI) + timedelta(minutes=n),
        "attempts": 0,
        "subject": "Thông báo: nộp hồ sơ trực tuyến" if email else None,
        "body": f'Kính gửi Đỗ Thị Ánh,\n\tdòng "{n}" \\ 🙂' if email else "SKHCN thong bao {n} €[]",
        "context": {"full_name": "Đỗ Thị Ánh", "tags": ["a", 1], "attributes": {"x": None}} if email else {},
        "encoding": None if email else "gsm7",
        "segments": None if email else 1 + n % 2,
        "cost": None if email else (Decimal("750.50") if n % 4 == 1 else 1500.0),
        "provider_ref": None,
        "parts_total": 0,
        "parts_delivered": 0,
        "created_at": AT,
        "claimed_at": None,
        "sent_at": None,
        "final_at": AT if suppressed else None,
    }


def _stored(engine: Engine) -> list[tuple[Any, ...]]:
    """Every column but the id, as the database holds it (SQLite: its storage class too), in the rows' order."""
    names = [column.name for column in MESSAGES.columns if column.name != "id"]
    if engine.dialect.name == "postgresql":
        forms = [f'"{name}"::text' for name in names]
    else:
        forms = [f"typeof({name}) || ':' || quote({name})" for name in names]
    with engine.connect() as connection:
        query = f"SELECT {', '.join(forms)} FROM messages ORDER BY id"  # noqa: S608  names from the table
        return [tuple(row) for row in connection.execute(text(query))]


def test_the_fast_paths_store_each_value_as_sqlalchemys_insert_does(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    Base.metadata.create_all(engine)
    rows = [_message(n) for n in range(bulk.COPY_FROM + 40)]  # PostgreSQL: through COPY
    with Session(engine) as session, session.begin():
        session.execute(insert(MESSAGES), rows)
    by_sqlalchemy = _stored(engine)
    with Session(engine) as session, session.begin():
        session.execute(delete(MESSAGES))
    fast = "_copy_ignoring_conflicts" if engine.dialect.name == "postgresql" else "_values_ignoring_conflicts"
    taken: list[int] = []
    real = getattr(bulk, fast)

    def counted(*args: Any, **kwargs: Any) -> int:
        taken.append(1)
        return int(real(*args, **kwargs))

    monkeypatch.setattr(bulk, fast, counted)

    with Session(engine) as session, session.begin():
        inserted = insert_ignoring_conflicts(session, MESSAGES, rows + rows[:3], conflict=["idempotency_key"])

    assert taken == [1]
    assert inserted == len(rows)
    assert _stored(engine) == by_sqlalchemy
