"""Alembic environment: both metadata (engine and consent), batch mode for SQLite, kombu's tables ignored."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from broadcaster.db.engine import make_engine
from broadcaster.db.migrations_support import include_object, target_metadata


def configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        render_as_batch=True,
        include_object=include_object,
        compare_type=True,
    )


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
