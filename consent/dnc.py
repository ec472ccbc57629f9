"""The do-not-call register: numbers whose owners refuse advertising (docs/domain.md §1.1).

The register is a snapshot: the latest import's numbers are the register. The engine is never imported.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.models import DoNotCallEntry

_PAGE = 500


def on_register_among(session: Session, phones: Iterable[str]) -> set[str]:
    """The subset of ``phones`` (E.164) on the register, one query per page of numbers."""
    wanted = list(dict.fromkeys(phones))
    found: set[str] = set()
    for start in range(0, len(wanted), _PAGE):
        page = wanted[start : start + _PAGE]
        found.update(session.scalars(select(DoNotCallEntry.phone).where(DoNotCallEntry.phone.in_(page))))
    return found
