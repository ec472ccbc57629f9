"""An installation on SQLite or PostgreSQL with an audit log written through ``audit.record``, the CLI run
inside it, and the ways to tamper with the log that a person with database access has."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Engine, Table, select, text, update

from broadcaster import audit
from broadcaster.audit.append import HEAD_ID
from broadcaster.audit.chain import entry_hash
from broadcaster.clock import FrozenClock
from broadcaster.context import AppContext
from broadcaster.db.migrate import upgrade
from broadcaster.db.models import AuditChainHead, AuditEntry
from broadcaster.users import add_user
from broadcaster.vocabulary import Role
from broadcaster.workdir import init_workdir
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.test_cli import Cli
from tests.broadcaster.workdir_templates import WorkdirTemplates

LOG = cast(Table, AuditEntry.__table__)
HEAD = cast(Table, AuditChainHead.__table__)
SQLITE_URL = 'url = "sqlite:///broadcaster.sqlite3"'


@dataclass
class Installation:
    directory: Path
    context: AppContext
    clock: FrozenClock

    @property
    def engine(self) -> Engine:
        return self.context.engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def installation(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: FrozenClock,
    isolated_env: None,
    workdir_templates: WorkdirTemplates,
) -> Iterator[Installation]:
    """A working directory whose database is SQLite or (the ``postgresql`` param) a private PG schema."""
    directory = tmp_path / "wd"
    workdir_templates.make(directory, admin_login=ADMIN_LOGIN, clock=clock)
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        config = directory / "broadcaster.toml"
        config.write_text(config.read_text().replace(SQLITE_URL, f'url = "{url}"'), encoding="utf-8")
        upgrade(url)
    context = AppContext.load(directory / "broadcaster.toml", clock=clock)
    if request.param == "postgresql":
        with context.sessions.begin() as session:
            add_user(session, actor=ADMIN_LOGIN, login=ADMIN_LOGIN, role=Role.ADMIN, clock=clock)
    assert context.engine.dialect.name == request.param
    yield Installation(directory, context, clock)
    context.close()


@pytest.fixture
def sqlite_installation(tmp_path: Path, clock: FrozenClock, isolated_env: None) -> Iterator[Installation]:
    directory = tmp_path / "wd"
    context = init_workdir(directory, admin_login=ADMIN_LOGIN, clock=clock)
    yield Installation(directory, context, clock)
    context.close()


def cli_in(installation: Installation, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI in the working directory, on the installation's frozen clock."""
    config = installation.directory / "broadcaster.toml"
    monkeypatch.chdir(installation.directory)
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setattr(
        "broadcaster.cli.common.load_context", lambda: AppContext.load(config, clock=installation.clock)
    )
    return Cli(monkeypatch)


def write_log(installation: Installation, entries: int = 20, *, per_transaction: int = 3) -> int:
    """``entries`` entries through ``audit.record`` in transactions of up to ``per_transaction``, the clock
    moving 5 hours between transactions (so they span several days); the chain's last id afterwards."""
    written = 0
    while written < entries:
        with installation.context.sessions.begin() as session:
            for _ in range(min(per_transaction, entries - written)):
                written += 1
                audit.record(
                    session,
                    actor=ADMIN_LOGIN,
                    action="campaign.approve" if written % 2 else "consent.grant",
                    subject_type="campaign",
                    subject_id=f"thu-nghiem-{written}",
                    at=installation.clock.now(),
                    reason=f"lần {written}",
                    details={"n": written, "kenh": "sms"},
                )
        installation.clock.advance(timedelta(hours=5))
    return last_id(installation.engine)


def last_id(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(HEAD.c.last_id)).scalar_one())


def triggers_off(engine: Engine) -> None:
    """What a database owner can do and the application's role cannot be stopped from by the triggers alone."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER audit_log_no_update"))
            connection.execute(text("DROP TRIGGER audit_log_no_delete"))


def row(engine: Engine, entry_id: int) -> dict[str, Any]:
    with engine.connect() as connection:
        return dict(connection.execute(select(LOG).where(LOG.c.id == entry_id)).mappings().one())


def set_row(engine: Engine, entry_id: int, **values: Any) -> None:
    with engine.begin() as connection:
        connection.execute(update(LOG).where(LOG.c.id == entry_id).values(**values))


def rechain_from(engine: Engine, first: int) -> None:
    """Recompute every hash from entry ``first`` on and the head, as an attacker hiding a change would."""
    with engine.begin() as connection:
        rows = connection.execute(select(LOG).where(LOG.c.id >= first).order_by(LOG.c.id)).mappings().all()
        prev = connection.execute(select(LOG.c.entry_hash).where(LOG.c.id == first - 1)).scalar_one()
        for item in rows:
            fields = {key: item[key] for key in item if key not in ("prev_hash", "entry_hash")}
            digest = entry_hash(prev_hash=prev, **fields)
            connection.execute(
                update(LOG).where(LOG.c.id == item["id"]).values(prev_hash=prev, entry_hash=digest)
            )
            prev = digest
        connection.execute(update(HEAD).where(HEAD.c.id == HEAD_ID).values(last_hash=prev))
