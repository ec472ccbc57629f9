"""The tick's heartbeat: each tick writes when it ran, so ``health`` and the alerts see a stopped beat."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.clock import Clock
from broadcaster.db.bulk import insert_ignoring_conflicts
from broadcaster.db.monitoring import Heartbeat
from broadcaster.lease import holder_name

TICK = "tick"


def record_beat(sessions: sessionmaker[Session], *, clock: Clock, name: str = TICK) -> None:
    """One short transaction: the row of ``name`` says it ran now, in this process."""
    now, holder = clock.now(), holder_name().rsplit(":", 1)[0]  # host:pid, without the holder's random part
    with sessions.begin() as session:
        table = Heartbeat.__table__
        insert_ignoring_conflicts(
            session,
            table,  # type: ignore[arg-type]
            [{"name": name, "holder": holder, "beat_at": now}],
            conflict=["name"],
        )
        row = session.get(Heartbeat, name)
        if row is not None:
            row.holder, row.beat_at = holder, now


def last_beat(session: Session, name: str = TICK) -> tuple[datetime, str] | None:
    """When ``name`` last ran and where (``host:pid``); None if it never did."""
    row = session.execute(select(Heartbeat.beat_at, Heartbeat.holder).where(Heartbeat.name == name)).first()
    return None if row is None else (row[0], row[1])
