"""The do-not-call register: numbers whose owners refuse advertising (docs/domain.md §1.1).

The register is a snapshot: the latest import's numbers are the register. The engine is never imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from consent.models import DoNotCallEntry, DoNotCallImport

_PAGE = 500


def on_register_among(session: Session, phones: Iterable[str]) -> set[str]:
    """The subset of ``phones`` (E.164) on the register, one query per page of numbers."""
    wanted = list(dict.fromkeys(phones))
    found: set[str] = set()
    for start in range(0, len(wanted), _PAGE):
        page = wanted[start : start + _PAGE]
        found.update(session.scalars(select(DoNotCallEntry.phone).where(DoNotCallEntry.phone.in_(page))))
    return found


def current_import(session: Session) -> DoNotCallImport | None:
    """The import whose numbers are the register now (the latest), or None before the first."""
    return session.scalar(select(DoNotCallImport).order_by(DoNotCallImport.id.desc()).limit(1))


def replace_register(
    session: Session,
    *,
    phones: Sequence[str],
    source_name: str,
    sha256: str,
    imported_by: str,
    at: datetime,
) -> tuple[DoNotCallImport, int]:
    """Make ``phones`` (E.164, checked by the caller) the whole register, in the caller's transaction: a
    refresh, not an addition. Returns the import row and how many numbers the register held before."""
    numbers = list(dict.fromkeys(phones))
    previous = session.scalar(select(func.count()).select_from(DoNotCallEntry)) or 0
    entry = DoNotCallImport(
        source_name=source_name[:255],
        sha256=sha256,
        numbers=len(numbers),
        imported_by=imported_by,
        imported_at=at,
    )
    session.add(entry)
    session.flush()
    session.execute(delete(DoNotCallEntry))
    for start in range(0, len(numbers), _PAGE):
        session.execute(
            insert(DoNotCallEntry),
            [{"phone": phone, "import_id": entry.id} for phone in numbers[start : start + _PAGE]],
        )
    return entry, previous
