"""The tables of supervision: when the tick last ran (``heartbeats``) and the alerts sent to the admins
(``alert_incidents``). Kept apart from ``broadcaster.db.models``, which holds the engine's data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.db.base import Base
from broadcaster.db.types import UTCDateTime


class Heartbeat(Base):
    """The last time a named loop did its work (``tick``: beat or ``run``), and which process it was."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AlertIncident(Base):
    """One incident of one alert (``key``: its kind and subject, e.g. ``provider_down:sms_main``): seen since
    ``opened_at``, told to the admins at ``notified_at`` (again every reminder interval), over at
    ``resolved_at``. At most one open row per key."""

    __tablename__ = "alert_incidents"
    __table_args__ = (Index("ix_alert_incidents_key_resolved_at", "key", "resolved_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
