"""Consent tables on their own MetaData (Alembic receives a list of metadata)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

consent_metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class ConsentBase(DeclarativeBase):
    metadata = consent_metadata


class Suppression(ConsentBase):
    """An address that must not receive anything on a channel (a hard bounce, an unknown number, a refusal)."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))  # normalised: E.164 or lower-cased e-mail
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(100))  # e.g. "smtp:5.1.1", "smpp:0x0B"
    # Stored as UTC by the caller; consent keeps no dependency on the engine's column types.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConsentEvent(ConsentBase):
    """One grant or withdrawal of consent for an address × channel × purpose; rows are never changed."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_lookup", "channel", "address", "purpose", "recorded_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))  # address_key: E.164 or lower-cased e-mail
    purpose: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))  # grant | withdraw
    source: Mapped[str] = mapped_column(String(32))
    notice_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    evidence: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    recorded_by: Mapped[str] = mapped_column(String(100))
    # UTC, given by the caller: consent never reads the clock.
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
