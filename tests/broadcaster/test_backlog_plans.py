"""The backlog's oldest queued message (``observe.facts.backlog``, read on every tick by the alerts and at every
metrics scrape) is one index entry on both databases, however many settled messages come before it: the
shape of a city-wide run part-way through, the first ids delivered and the rest queued (migration 0023;
docs/architecture.md, "The oldest queued message"). Ordered by id alone, PostgreSQL walked the primary key
past every delivered message."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from broadcaster.db.engine import make_engine
from broadcaster.db.migrate import upgrade
from broadcaster.observe import facts
from broadcaster.observe.facts import Backlog

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SETTLED, QUEUED = 6_000, 4_000


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'backlog.sqlite3'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    upgrade(url)
    made = make_engine(url)
    # Messages created a second apart: the settled first, then the queued, then one deferred an hour ago.
    with made.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO messages (id, idempotency_key, kind, channel, provider, address, status, hold,"
                " attempts, body, context, parts_total, parts_delivered, created_at, not_before)"
                " VALUES (:id, :key, 'campaign', 'sms', 'sms_main', '+84905000000', :status, false, 0, 'b',"
                " '{}', 0, 0, :created_at, :not_before)"
            ),
            [
                {
                    "id": n,
                    "key": f"k{n}",
                    "status": "delivered" if n <= SETTLED else "queued",
                    "created_at": NOW - timedelta(seconds=SETTLED + QUEUED + 1 - n),
                    "not_before": NOW - timedelta(hours=1) if n == SETTLED + QUEUED + 1 else None,
                }
                for n in range(1, SETTLED + QUEUED + 2)
            ],
        )
        connection.execute(text("ANALYZE messages"))
    yield made
    made.dispose()


def _plans(engine: Engine) -> tuple[Backlog, list[Any]]:
    """The backlog, and each of its statements explained as they ran (PostgreSQL: JSON with actual rows)."""
    captured: list[tuple[str, Any]] = []

    def capture(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        captured.append((statement, parameters))

    with Session(engine) as session:
        event.listen(engine, "before_cursor_execute", capture)
        try:
            found = facts.backlog(session, NOW)
        finally:
            event.remove(engine, "before_cursor_execute", capture)
    plans = []
    with engine.connect() as connection:
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        for statement, parameters in [(s, p) for s, p in captured if "messages" in s]:
            if engine.dialect.name == "postgresql":
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
                [(explained,)] = cursor.fetchall()
                plans.append(explained[0]["Plan"])
            else:
                rows = cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
                plans.append("\n".join(str(row[-1]) for row in rows))
    return found, plans


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def test_the_oldest_queued_message_is_found_without_reading_the_settled_ones(engine: Engine) -> None:
    found, plans = _plans(engine)

    # The first queued one has waited QUEUED seconds, longer than the deferred one (due an hour ago).
    assert found.since == NOW - timedelta(seconds=QUEUED)
    assert len(plans) == 2
    for plan in plans:
        if engine.dialect.name == "sqlite":
            assert "ix_messages_status_not_before" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
            continue
        nodes = list(_nodes(plan))
        scans = [node for node in nodes if "Scan" in node["Node Type"]]
        assert [scan.get("Index Name") for scan in scans] == ["ix_messages_status_not_before"], nodes
        assert not any(node["Node Type"] == "Sort" for node in nodes), nodes
        # One entry read, none passed over: not the settled messages, not the queued ones after it.
        assert scans[0]["Actual Rows"] <= 1, scans[0]
        assert scans[0].get("Rows Removed by Filter", 0) == 0, scans[0]
