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


class DoNotCallImport(ConsentBase):
    """One import of the do-not-call register; the latest import's numbers are the register (a refresh
    replaces them), earlier imports stay as history of what was applied when."""

    __tablename__ = "do_not_call_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_name: Mapped[str] = mapped_column(String(255))  # the file's name as given
    sha256: Mapped[str] = mapped_column(String(64))
    numbers: Mapped[int] = mapped_column()
    imported_by: Mapped[str] = mapped_column(String(100))
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DoNotCallEntry(ConsentBase):
    """A number on the do-not-call register (applied to advertising SMS: docs/domain.md §1.1)."""

    __tablename__ = "do_not_call"

    phone: Mapped[str] = mapped_column(String(32), primary_key=True)  # E.164
    import_id: Mapped[int] = mapped_column()


class CampaignExclusion(ConsentBase):
    """An address one campaign must never reach (a per-campaign exclusion list), whatever its consent."""

    __tablename__ = "campaign_exclusions"
    __table_args__ = (UniqueConstraint("campaign_id", "channel", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))  # address_key
    list_name: Mapped[str] = mapped_column(String(255))
    added_by: Mapped[str] = mapped_column(String(100))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AppRequestNonce(ConsentBase):
    """A signed city-app request already accepted: the same nonce again is a replay and is refused."""

    __tablename__ = "app_request_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SubjectErasure(ConsentBase):
    """The tombstone a data-subject erasure leaves: which request, when, by whom and how many rows it touched;
    the person is named only by a keyed hash, so a later import of the same address can be recognised."""

    __tablename__ = "subject_erasures"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(100))  # the request's reference, e.g. a dossier number
    subject_hash: Mapped[str] = mapped_column(String(64), index=True)
    summary: Mapped[str] = mapped_column(Text)  # JSON: rows removed or anonymised per table
    erased_by: Mapped[str] = mapped_column(String(100))
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
