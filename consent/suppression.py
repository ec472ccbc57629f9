"""Suppression list: addresses that must receive nothing more on a channel.

Receives its clock value from the caller and never imports the engine (docs/architecture.md §1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from consent.lookup import keys_among
from consent.models import Suppression

_PAGE = 5000  # keys per look-up: one parameter whatever their number


def address_key(channel: str, address: str) -> str:
    """The form under which an address is suppressed and de-duplicated: e-mail case-insensitively.

    RFC 5321 §2.4 lets a mailbox's local part be case-sensitive, so mail goes to the address as stored; but
    no common mailbox provider treats ``An.Nguyen@`` and ``an.nguyen@`` as two people, and a refusal must
    cover every spelling of the address. Phone numbers are E.164 already.
    """
    return address.lower() if channel == "email" else address


def keys_of(channel: str, addresses: Iterable[str]) -> dict[str, list[str]]:
    """The addresses (as given) by their ``address_key``, each key once, in the order first met."""
    by_key: dict[str, list[str]] = {}
    for address in addresses:
        key = address_key(channel, address)
        found = by_key.get(key)
        if found is None:
            by_key[key] = [address]
        elif address not in found:
            found.append(address)
    return by_key


def suppressed_among(session: Session, *, channel: str, addresses: Iterable[str]) -> set[str]:
    """The subset of ``addresses`` (as given) suppressed on ``channel`` (one query per page of addresses)."""
    return suppressed_of(session, channel=channel, by_key=keys_of(channel, addresses))


def suppressed_of(session: Session, *, channel: str, by_key: Mapping[str, Iterable[str]]) -> set[str]:
    """``suppressed_among`` of addresses already grouped by key (``keys_of``)."""
    wanted = list(by_key)
    found: set[str] = set()
    for start in range(0, len(wanted), _PAGE):
        query = select(Suppression.address).where(Suppression.channel == channel)
        for key in session.scalars(
            keys_among(session, query, Suppression.address, wanted[start : start + _PAGE])
        ):
            found.update(by_key[key])
    return found


def suppress(session: Session, *, channel: str, address: str, reason: str, source: str, at: datetime) -> bool:
    """Add the address; returns False when it was already suppressed (the first reason is kept)."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(Suppression)
        .values(
            channel=channel,
            address=address_key(channel, address),
            reason=reason,
            source=source,
            created_at=at,
        )
        .on_conflict_do_nothing(index_elements=["channel", "address"])
    )
    result = session.execute(statement)
    return bool(getattr(result, "rowcount", 0))
