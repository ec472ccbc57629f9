"""SQLite's query plans on the hot paths: a statement that names messages by id or idempotency key goes
through that key, never through a status index, whatever the table holds (migration 0022's statistics;
docs/architecture.md, "SQLite's query plans at scale"). Without them the claim of each window and each page of
receipts walked every queued or delivered message of the installation."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from broadcaster.observe import facts
from broadcaster.outbox.fallbacks import cancel_fallbacks
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.delivery.workdir_files import citizens

BY_KEY = re.compile(r"messages\.(id|idempotency_key) (IN|=) ")


def explained(engine: Engine, statements: list[tuple[str, Any]]) -> dict[str, str]:
    plans: dict[str, str] = {}
    with engine.connect() as connection:
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        for statement, parameters in statements:
            if statement not in plans:
                rows = cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
                plans[statement] = "\n".join(str(row[-1]) for row in rows)
    return plans


def test_statements_naming_messages_by_key_never_walk_a_status_index(pipeline: Pipeline) -> None:
    engine: Engine = pipeline.context.sessions.kw["bind"]
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        if not many and BY_KEY.search(statement):
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        pipeline.add_contacts(citizens(30))
        run_id = pipeline.send(pipeline.approved_campaign())
        pipeline.wait_for_statuses(run_id, {("sms", "delivered"): 30, ("email", "sent"): 30})
        with pipeline.context.sessions.begin() as session:
            cancel_fallbacks(
                session, [(run_id, contact, "zalo") for contact in range(1, 31)], now=pipeline.clock.now()
            )
    finally:
        event.remove(engine, "before_cursor_execute", capture)

    plans = explained(engine, captured)
    assert any(s.startswith("UPDATE messages SET status") and "RETURNING" in s for s in plans)  # the claim
    assert any("fallback" in str(p) for _s, p in captured)  # cancel_fallbacks' update
    walking = {s: plan for s, plan in plans.items() if "ix_messages_status" in plan}
    assert not walking, walking


def test_the_oldest_queued_message_is_one_index_entry(pipeline: Pipeline) -> None:
    engine: Engine = pipeline.context.sessions.kw["bind"]
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        captured.append((statement, parameters))

    with pipeline.context.readers() as session:
        event.listen(engine, "before_cursor_execute", capture)
        try:
            facts.backlog(session, pipeline.clock.now())
        finally:
            event.remove(engine, "before_cursor_execute", capture)
    plans = explained(engine, [(s, p) for s, p in captured if "messages" in s])
    assert len(plans) == 2
    assert all(
        "ix_messages_status_not_before" in plan and "TEMP B-TREE" not in plan for plan in plans.values()
    )
    # The undeferred one: the first entry in the index's id order, not the least created_at of all of them.
    [undeferred] = [s for s in plans if "not_before IS NULL" in s]
    assert "ORDER BY messages.not_before, messages.id" in undeferred
    assert "LIMIT" in undeferred
