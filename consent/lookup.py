"""Which rows of a page of keys a table holds, with the keys sent as one parameter, not one per key.

An ``IN`` list of a thousand parameters costs more to render and convert than the look-up itself costs the
database (docs/architecture.md, "Planning at scale"). On PostgreSQL the keys go as one array joined by
``unnest``, which the planner takes through the key's index whatever the table's statistics; on SQLite as
one JSON array read by ``json_each``, which SQLite probes the key's index with, one key at a time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, String, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql.sqltypes import NullType

AnySelect = TypeVar("AnySelect", bound="Select[*tuple[Any, ...]]")


def keys_among(
    session: Session,
    query: AnySelect,
    key: ColumnElement[str] | QueryableAttribute[str],
    values: Sequence[str],
) -> AnySelect:
    """``query`` for the rows whose ``key`` (a text column) is one of ``values``."""
    column = key.expression
    if session.get_bind().dialect.name == "postgresql":
        return joined_to_array(query, column, values)
    text = json.dumps(list(values), ensure_ascii=False)
    given = func.json_each(bindparam("keys_among_values", text, type_=String())).table_valued("value")
    return query.where(column.in_(select(given.c.value)))


def joined_to_array(query: AnySelect, key: ColumnElement[Any], values: Sequence[Any]) -> AnySelect:
    """PostgreSQL: ``query`` joined to ``unnest(values)`` on ``key``, the values bound as one array."""
    item_type = String() if isinstance(key.type, NullType) else key.type
    array = bindparam("where_in_values", list(values), type_=ARRAY(item_type))
    given = func.unnest(array).table_valued("value", name="given_values").render_derived()
    return query.join(given, key == given.c.value)
