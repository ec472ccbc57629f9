"""Run Alembic from code (no alembic.ini needed): the migrations ship inside the package.

Alembic is imported by the functions that use it, not here: it costs about a quarter of a second, and every
``broadcaster`` command imports this module while only ``init`` and ``db`` need it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from broadcaster.db.engine import enable_wal, make_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    engine = make_engine(url)
    enable_wal(engine)
    with engine.begin() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


def head_revision() -> str:
    """The newest migration shipped with this version of the package."""
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head())


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def pending_differences(engine: Engine) -> list[object]:
    """What autogenerate would still write after upgrading: must be empty."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from broadcaster.db.migrations_support import include_object, target_metadata

    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"include_object": include_object, "compare_type": True, "render_as_batch": True},
        )
        with warnings.catch_warnings():
            # SQLite cannot reflect an index on an expression (ix_contacts_email_lower): not compared there.
            warnings.filterwarnings("ignore", message=".*expression-based index")
            return list(compare_metadata(context, target_metadata()))  # type: ignore[arg-type]  # a list is accepted


def make_revision(url: str, message: str) -> None:
    """Developer helper: autogenerate a new migration against an up-to-date database."""
    from alembic import command

    config = alembic_config(url)
    engine = make_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
    engine.dispose()
