"""Suppression list: addresses that must receive nothing more on a channel.

Receives its clock value from the caller and never imports the engine (ARCHITECTURE §1).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from consent.models import Suppression


def suppressed_among(session: Session, *, channel: str, addresses: Iterable[str]) -> set[str]:
    """The subset of ``addresses`` suppressed on ``channel`` (one query per page of addresses)."""
    wanted = list(set(addresses))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        page = wanted[start : start + 500]
        found.update(
            session.scalars(
                select(Suppression.address).where(
                    Suppression.channel == channel, Suppression.address.in_(page)
                )
            )
        )
    return found


def suppress(session: Session, *, channel: str, address: str, reason: str, source: str, at: datetime) -> bool:
    """Add the address; returns False when it was already suppressed (the first reason is kept)."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(Suppression)
        .values(channel=channel, address=address, reason=reason, source=source, created_at=at)
        .on_conflict_do_nothing(index_elements=["channel", "address"])
    )
    result = session.execute(statement)
    return bool(getattr(result, "rowcount", 0))
