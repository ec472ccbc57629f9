"""The auditor's search of the audit trail: entries by actor, action, campaign, recipient and period, read in
keyset pages (``broadcaster audit search`` now, the web UI later).

A recipient is never stored in an entry: it is found through its keyed hash (``audit.hashes.address_hash``),
which delivery entries carry in their details and subject export/erasure entries use as their subject id. The
details are searched as JSON text (a quoted value anywhere in them), the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Text, and_, cast, or_, select
from sqlalchemy.orm import Session

from broadcaster.db.models import AuditEntry

PAGE_SIZE = 500
# ``--action campaign.`` (or ``campaign.*``) is every action of that family; anything else is exact.
_PREFIX_MARKS = (".", "*")


@dataclass(frozen=True)
class AuditFilter:
    """Every field narrows; an empty filter is every entry. ``period_from`` inclusive, ``period_to``
    exclusive. ``recipient_hashes``: the keyed hashes of one address (more than one when the installation's
    key changed), any of which selects an entry."""

    actor: str | None = None
    action: str | None = None
    campaign: str | None = None
    recipient_hashes: tuple[str, ...] = ()
    period_from: datetime | None = None
    period_to: datetime | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        details = cast(AuditEntry.details, Text)
        if self.actor is not None:
            where.append(AuditEntry.actor == self.actor)
        if self.action is not None:
            if self.action.endswith(_PREFIX_MARKS):
                prefix = self.action.rstrip("*")
                where.append(AuditEntry.action.startswith(prefix, autoescape=True))
            else:
                where.append(AuditEntry.action == self.action)
        if self.campaign is not None:
            where.append(
                or_(
                    and_(AuditEntry.subject_type == "campaign", AuditEntry.subject_id == self.campaign),
                    details.contains(_quoted(self.campaign), autoescape=True),
                )
            )
        if self.recipient_hashes:
            where.append(
                or_(
                    AuditEntry.subject_id.in_(self.recipient_hashes),
                    *(details.contains(_quoted(h), autoescape=True) for h in self.recipient_hashes),
                )
            )
        if self.period_from is not None:
            where.append(AuditEntry.at >= self.period_from)
        if self.period_to is not None:
            where.append(AuditEntry.at < self.period_to)
        return where

    def as_dict(self) -> dict[str, object]:
        return {
            "actor": self.actor,
            "action": self.action,
            "campaign": self.campaign,
            "recipient": list(self.recipient_hashes),
            "period_from": self.period_from.isoformat() if self.period_from else None,
            "period_to": self.period_to.isoformat() if self.period_to else None,
        }


def _quoted(value: str) -> str:
    """A JSON string value as it appears in the stored text: a campaign id never matches a longer one."""
    return f'"{value}"'


@dataclass(frozen=True)
class FoundEntry:
    id: int
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    reason: str | None
    details: dict[str, Any]
    entry_hash: str


_COLUMNS = (
    AuditEntry.id,
    AuditEntry.at,
    AuditEntry.actor,
    AuditEntry.action,
    AuditEntry.subject_type,
    AuditEntry.subject_id,
    AuditEntry.reason,
    AuditEntry.details,
    AuditEntry.entry_hash,
)


def iter_entries(
    session: Session,
    filters: AuditFilter,
    *,
    newest_first: bool = False,
    limit: int | None = None,
    page_size: int = PAGE_SIZE,
    start_after: int | None = None,
) -> Iterator[FoundEntry]:
    """The entries ``filters`` selects by position (``newest_first``: descending), a page at a time: plain
    tuples, never ORM objects, so an export of the whole trail holds one page. ``start_after``: the position a
    previous page ended with (the web's keyset pages)."""
    base = select(*_COLUMNS).where(*filters.clauses())
    order = AuditEntry.id.desc() if newest_first else AuditEntry.id
    last: int | None = start_after
    left = limit
    while left is None or left > 0:
        query = (
            base
            if last is None
            else base.where(AuditEntry.id < last if newest_first else AuditEntry.id > last)
        )
        size = page_size if left is None else min(page_size, left)
        page = session.execute(query.order_by(order).limit(size)).all()
        yield from (FoundEntry(*row) for row in page)
        if len(page) < size:
            return
        last = page[-1].id
        if left is not None:
            left -= len(page)
