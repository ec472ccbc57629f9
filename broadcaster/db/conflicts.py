"""Transactions that PostgreSQL may cancel because another one got in their way, and one-line errors.

PostgreSQL ends one of two transactions that wait on each other's row locks (a deadlock, SQLSTATE 40P01) or
whose snapshots conflict (a serialization failure, 40001). Nothing was written by the cancelled one, so it can
simply run again; a second try nearly always finds the other transaction gone (docs/architecture.md §3,
"Receipts, the tick and the appliers").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

T = TypeVar("T")

log = logging.getLogger(__name__)

# SQLSTATE codes of a transaction cancelled for another's sake (PostgreSQL manual, appendix A).
CONFLICT_STATES = frozenset({"40P01", "40001"})
CONFLICT_ATTEMPTS = 5


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a deadlock or a serialization failure that a new try may pass."""
    if not isinstance(exc, DBAPIError):
        return False
    return getattr(exc.orig, "sqlstate", None) in CONFLICT_STATES


def retrying_conflicts(work: Callable[[], T], *, what: str, attempts: int = CONFLICT_ATTEMPTS) -> T:
    """Run ``work`` (one whole transaction) again when PostgreSQL cancels it for a conflict, up to ``attempts``
    times; any other error, or the last conflict, is raised."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except DBAPIError as exc:
            if not is_conflict(exc) or attempt == attempts:
                raise
            log.warning("%s: %s; trying again (%d/%d)", what, one_line(exc), attempt, attempts - 1)
    raise AssertionError("unreachable: the last attempt returns or raises")


def one_line(exc: BaseException) -> str:
    """The exception's class and the first line of its message: a database error's own words, without the
    statement and its parameters (hundreds of them, with addresses, in a bulk update)."""
    cause: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__
