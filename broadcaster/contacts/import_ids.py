"""The external ids a file has used so far and the row of each, kept in a temporary table of the import's own
transaction rather than in memory: a city-wide file carries millions of them (docs/architecture.md §5
"Contacts file": an external id is used once per file)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.orm import Session

from broadcaster.db.bulk import insert_whole_rows, where_in

__all__ = ["ImportIds"]

_METADATA = MetaData()
_IDS = Table(
    "contact_import_ids",
    _METADATA,
    Column("external_id", String(100), primary_key=True),
    Column("first_row", Integer, nullable=False),
    prefixes=["TEMPORARY"],
)


class ImportIds:
    """Create with the import's session; the table goes with the transaction (or ``drop``)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        connection = session.connection()
        _IDS.drop(connection, checkfirst=True)  # left on a pooled SQLite connection by an earlier import
        _IDS.create(connection)

    def first_rows(self, external_ids: Collection[str]) -> dict[str, int]:
        """The row that first used each of ``external_ids``, for those used before."""
        if not external_ids:
            return {}
        query = select(_IDS.c.external_id, _IDS.c.first_row)
        found = self._session.execute(where_in(self._session, query, _IDS.c.external_id, list(external_ids)))
        return {external_id: row for external_id, row in found}

    def add(self, first_rows: Mapping[str, int]) -> None:
        insert_whole_rows(
            self._session, _IDS, [{"external_id": key, "first_row": row} for key, row in first_rows.items()]
        )

    def drop(self) -> None:
        _IDS.drop(self._session.connection())
