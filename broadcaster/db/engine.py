"""Engines and sessions, with the SQLite rules of docs/architecture.md §3.

Every SQLite connection sets ``busy_timeout`` ≥ 30 s and ``synchronous=NORMAL``; write transactions begin
with ``BEGIN IMMEDIATE`` (SQLAlchemy's documented pysqlite recipe: turn off the driver's own transaction
handling and emit BEGIN ourselves), so two writers queue on the lock instead of failing on upgrade.
WAL is set once, by ``init``/``db upgrade``, because it is a property of the file.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "broadcaster_read_only"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def normalise_url(url: str) -> str:
    """PostgreSQL through psycopg 3 whatever the user wrote."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def database_exists(url: str) -> bool:
    """Whether there is a database to ask: an SQLite file that exists, or a server that answers."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        name = parsed.database
        return name is not None and name not in ("", ":memory:") and Path(name).is_file()
    engine = make_engine(url)
    try:
        with engine.connect():
            return True
    except OperationalError:
        return False
    finally:
        engine.dispose()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    try:
        return _make_engine(url, echo=echo)
    except ArgumentError as exc:  # includes NoSuchModuleError: an unknown scheme or a driver not installed
        raise UserError(
            _(
                "the database URL is not usable (%(error)s); set [database] url in broadcaster.toml "
                "(or BROADCASTER_DATABASE__URL), e.g. sqlite:///broadcaster.sqlite3 or postgresql://user@host/db"
            )
            % {"error": exc}
        ) from None


def _make_engine(url: str, *, echo: bool) -> Engine:
    # A failed statement's error names the statement but not its parameters: a bulk update has hundreds of
    # them, phone numbers and e-mail addresses among them, and its error ends up in logs and on terminals.
    url = normalise_url(url)
    if not is_sqlite(url):
        engine = create_engine(url, echo=echo, future=True, hide_parameters=True)
        ping_when_idle(engine)
        return engine

    engine = create_engine(
        url,
        echo=echo,
        hide_parameters=True,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (the pysqlite driver would otherwise defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Readers (long audience scans, reports) must not hold the write lock: in WAL mode a deferred
        # transaction reads a snapshot while writers go on.
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


# A pooled connection idle longer than this is tested before use (a server restart, a firewall's idle cut).
PING_AFTER_IDLE_SECONDS = 2.0
_CHECKED_IN_AT = "broadcaster.checked_in_at"


def ping_when_idle(engine: Engine, *, idle_seconds: float = PING_AFTER_IDLE_SECONDS) -> None:
    """SQLAlchemy's ``pool_pre_ping`` costs a round trip at every checkout: on a worker's busy path (a
    transaction per window of SMS) one round trip in four. Only a connection that sat in the pool is
    tested; one used a moment ago fails, if the server went away since, on its first statement as it would
    on the ping. A failed ping makes the pool take a new connection (SQLAlchemy's DisconnectionError)."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN_AT] = idle_clock()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None or idle_clock() - checked_in_at < idle_seconds:
            return  # new, or used a moment ago
        try:
            ping(dbapi_connection)
        except Exception as exc:  # the driver's own error class: the connection is unusable
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc


def idle_clock() -> float:
    return time.monotonic()


def ping(dbapi_connection: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT 1")
    finally:
        cursor.close()
    dbapi_connection.rollback()  # the ping opened a transaction: close it


def enable_wal(engine: Engine) -> None:
    """Write-ahead logging lets readers (reports, status) run while a worker writes."""
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()
    finally:
        raw.close()


# ``Session.info`` key: whether sends and delivery outcomes are audited (``[audit] deliveries``). Carried by
# the session, so the code that applies receipts deep inside a worker needs no settings to know it.
AUDIT_DELIVERIES = "broadcaster.audit_deliveries"


def session_factory(engine: Engine, *, audit_deliveries: bool = True) -> sessionmaker[Session]:
    """Sessions for work that writes (SQLite: BEGIN IMMEDIATE)."""
    return sessionmaker(engine, expire_on_commit=False, info={AUDIT_DELIVERIES: audit_deliveries})


def reader_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that only read (SQLite: a deferred BEGIN, so a long scan never blocks writers)."""
    return sessionmaker(engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False)


def readers_of(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """The read-only counterpart of a writer factory, on the same engine."""
    bind: Engine = sessions.kw["bind"]
    return reader_factory(bind)
