"""PostgreSQL for a worker that sends: pooled connections pinged only after sitting idle, a dropped one
replaced, and the commits that need not wait for the disk.

A worker that sends reuses its pooled connections back to back; pinging each at checkout was one more round
trip per transaction. A connection idle past ``PING_AFTER_IDLE_SECONDS`` is still pinged, so one the server
dropped meanwhile (a restart, ``pg_terminate_backend``) is replaced before the caller sees it. A claim commits
without waiting for the disk (``commit_unflushed``); the hand-over mark waits (docs/architecture.md §3).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from broadcaster.clock import SystemClock
from broadcaster.db import engine as db_engine
from broadcaster.db.engine import commit_unflushed, make_engine, session_factory
from broadcaster.db.migrate import upgrade
from broadcaster.outbox.claims import claim, mark_handed

pytestmark = pytest.mark.services


@pytest.fixture
def server(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


def _pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    pings: list[Any] = []
    real = engine.dialect.do_ping

    def counting(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counting)
    return pings


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_used_again_at_once_is_not_pinged(
    server: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_engine, "PING_AFTER_IDLE_SECONDS", 3600.0)
    pings = _pings(server, monkeypatch)

    first = _backend_pid(server)
    again = [_backend_pid(server) for _ in range(5)]

    assert again == [first] * 5  # the same pooled connection each time
    assert pings == []


def test_an_idle_connection_the_server_dropped_is_replaced_before_use(
    server: Engine, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped = _backend_pid(server)  # now idle in the pool
    admin = make_engine(postgres_url)
    try:
        with admin.begin() as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped}).scalar()
    finally:
        admin.dispose()
    monkeypatch.setattr(db_engine, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has been idle long enough
    pings = _pings(server, monkeypatch)

    replacement = _backend_pid(server)  # no error reaches the caller

    assert replacement != dropped
    assert len(pings) == 1  # the dropped connection failed its ping; the fresh one needed none


def test_commit_unflushed_relaxes_its_own_transaction_only(server: Engine) -> None:
    sessions = session_factory(server)
    with sessions.begin() as session:
        commit_unflushed(session)
        inside = session.execute(text("SHOW synchronous_commit")).scalar_one()
    with sessions.begin() as session:
        after = session.execute(text("SHOW synchronous_commit")).scalar_one()

    assert (inside, after) == ("off", "on")


def test_a_claim_commits_unflushed_and_a_hand_over_mark_waits_for_the_disk(
    server: Engine, postgres_url: str
) -> None:
    upgrade(postgres_url)
    statements: list[str] = []
    event.listen(server, "before_cursor_execute", lambda _c, _cur, sql, *_rest: statements.append(sql))
    sessions = session_factory(server)
    clock = SystemClock()

    claim(sessions, chunk_id=1, window=50, now=clock.now())
    claimed = list(statements)
    statements.clear()
    mark_handed(sessions, [1, 2], clock=clock)

    assert any("synchronous_commit = off" in sql for sql in claimed)
    assert not any("synchronous_commit" in sql for sql in statements)
