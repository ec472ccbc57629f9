"""Reading a row that must exist: a clear ``MissingRow`` instead of ``None`` travelling on."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.orm import Session

from broadcaster.db.base import Base
from broadcaster.errors import MissingRow

RowT = TypeVar("RowT", bound=Base)


def required(session: Session, model: type[RowT], key: Any, *, referenced_by: str) -> RowT:
    """``session.get(model, key)``, raising ``MissingRow`` that names the row and who points at it."""
    row = session.get(model, key)
    if row is None:
        raise MissingRow(f"{model.__tablename__} row {key!r} is missing (referenced by {referenced_by})")
    return row
