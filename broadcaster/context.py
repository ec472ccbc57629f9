"""The application context a command or worker runs in: settings, database, clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.clock import Clock, SystemClock
from broadcaster.db.engine import make_engine, reader_factory, session_factory
from broadcaster.settings import Settings, load_settings


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    readers: sessionmaker[Session]
    clock: Clock = field(default_factory=SystemClock)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> AppContext:
        engine = make_engine(settings.database_url, echo=settings.database.echo)
        return cls(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine, audit_deliveries=settings.audit.deliveries),
            readers=reader_factory(engine),
            clock=clock or SystemClock(),
        )

    @classmethod
    def load(cls, config: Path | None = None, *, clock: Clock | None = None) -> AppContext:
        return cls.from_settings(load_settings(config), clock=clock)

    @property
    def templates_dir(self) -> Path:
        return self.settings.path(self.settings.templates_dir)

    @property
    def campaigns_dir(self) -> Path:
        return self.settings.path(self.settings.campaigns_dir)

    @property
    def notices_dir(self) -> Path:
        """Versioned consent notices: ``<purpose>/<version>.md``."""
        return self.settings.path(self.settings.notices_dir)

    def close(self) -> None:
        self.engine.dispose()
