"""PostgreSQL connections from the pool (broadcaster/db/engine.py ``ping_when_idle``): one that sat idle is
tested before use and replaced when the server dropped it; one used a moment ago goes out without a round
trip."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from broadcaster.db import engine as engine_module
from broadcaster.db.engine import PING_AFTER_IDLE_SECONDS, make_engine

pytestmark = pytest.mark.services


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    made = make_engine(postgres_url)
    try:
        yield made
    finally:
        made.dispose()


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the pings (and still sends them)."""
    sent: list[int] = []
    real = engine_module.ping

    def counted(dbapi_connection: Any) -> None:
        sent.append(1)
        real(dbapi_connection)

    monkeypatch.setattr(engine_module, "ping", counted)
    return sent


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The pool's clock moves on (the connection sat idle that long)."""
    real: Callable[[], float] = engine_module.idle_clock
    monkeypatch.setattr(engine_module, "idle_clock", lambda: real() + seconds)


def test_a_connection_the_server_dropped_while_idle_is_replaced(
    engine: Engine, pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backend_pid(engine)
    admin = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        with admin.begin() as connection:  # what a server restart or a firewall does to it
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar_one()
    finally:
        admin.dispose()
    later(monkeypatch, PING_AFTER_IDLE_SECONDS + 1)

    second = backend_pid(engine)  # no error: the ping found the connection dead, the pool made a new one

    assert second != first
    assert pings == [1]


def test_a_connection_used_a_moment_ago_goes_out_without_a_ping(
    engine: Engine, pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backend_pid(engine)
    assert backend_pid(engine) == first
    assert pings == []  # a new connection, then one back from the pool at once: no round trip

    later(monkeypatch, PING_AFTER_IDLE_SECONDS + 1)
    assert backend_pid(engine) == first
    assert pings == [1]  # idle long enough: tested, and kept
