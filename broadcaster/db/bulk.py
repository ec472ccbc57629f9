"""Bulk writes that cost one statement per page of rows on PostgreSQL, not one per row.

On PostgreSQL an executemany is a statement per row, each bound and run in a server process on the same
cores as the engine. The rows go instead as one array per column, unpacked by ``unnest``: a fixed statement
whatever the number of rows, about a twelfth of the client's CPU per updated row and under half per inserted
one (docs/architecture.md, "Bulk writes on PostgreSQL"). SQLite runs in-process, where an executemany costs no
round trip; but a table with a trigger (``messages`` keeps its tallies so) costs about 30 µs more for each row
executed on its own, so an insert that ignores conflicts goes there as multi-row ``VALUES``, a third of the
time (docs/architecture.md, "Planning at scale")."""

from __future__ import annotations

import functools
import operator
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Select,
    Table,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from consent.lookup import joined_to_array

ROWS_PER_STATEMENT = 5000
# One multi-row ``VALUES`` on SQLite: at most this many rows (as SQLAlchemy's own) and parameters (SQLite's
# limit is 32,766 since 3.32).
SQLITE_ROWS = 1000
SQLITE_PARAMETERS = 16000
# From this many rows an insert that ignores conflicts goes through ``COPY`` on PostgreSQL.
COPY_FROM = 200


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """``INSERT`` of rows that all have the same keys."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(table), list(rows))
        return
    _insert_pages(session, _insert_from_arrays(table, tuple(rows[0]), None), rows)


def insert_whole_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """``insert_rows`` of rows that give every column of ``table`` (no default to fill in). On SQLite this is
    the driver's own executemany, each value converted by its column's type as SQLAlchemy converts it: per
    row, SQLAlchemy's executemany costs more than SQLite's insert itself."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql":
        _insert_pages(session, _insert_from_arrays(table, tuple(rows[0]), None), rows)
        return
    compiled = insert(table).compile(dialect=dialect, column_keys=list(rows[0]))
    names = list(compiled.positiontup or ())  # the order of the statement's "?"
    if set(names) != set(rows[0]):
        raise ValueError(
            f"insert_whole_rows: rows of {table.name} give {sorted(rows[0])}, not {sorted(names)}"
        )
    values = _stored_values(table, names, dialect)
    connection.exec_driver_sql(str(compiled), [tuple(values(row)) for row in rows])


# No value given yet: the first value of a column is always converted.
_NOTHING = object()


def reserve_ids(session: Session, table: Table, count: int) -> list[int]:
    """``count`` new ids for ``table``'s integer ``id``, to insert rows with ids known beforehand (an
    executemany cannot say which id each row got). PostgreSQL: from the column's sequence. SQLite: after the
    largest id, as SQLite itself numbers rows; the write transaction's lock (BEGIN IMMEDIATE) keeps any other
    writer out until the rows are in."""
    if count <= 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        sequence = func.pg_get_serial_sequence(table.name, "id")
        query = select(func.nextval(sequence)).select_from(func.generate_series(1, count))
        return list(session.scalars(query))
    largest = session.scalar(select(func.max(table.c.id))) or 0
    return list(range(largest + 1, largest + 1 + count))


def insert_ignoring_conflicts(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], *, conflict: Sequence[str]
) -> int:
    """``INSERT … ON CONFLICT DO NOTHING`` of rows that all have the same keys; how many were inserted."""
    if not rows:
        return 0
    if session.get_bind().dialect.name != "postgresql":
        if _no_defaults_left_out(table, rows[0]):
            return _values_ignoring_conflicts(session, table, rows, conflict)
        statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=list(conflict))
        # RETURNING (the primary key, read and dropped) makes SQLAlchemy send the rows as multi-row VALUES ("insertmanyvalues"), in order, which
        # it does not for a plain executemany with ON CONFLICT; see the module's docstring for why it pays.
        return len(session.execute(statement.returning(table.c[_key(table)]), list(rows)).all())
    if len(rows) >= COPY_FROM:
        return _copy_ignoring_conflicts(session, table, rows, conflict)
    return _insert_pages(session, _insert_from_arrays(table, tuple(rows[0]), tuple(conflict)), rows)


def _no_defaults_left_out(table: Table, row: Mapping[str, Any]) -> bool:
    """Whether the columns ``row`` leaves out have no default for SQLAlchemy to fill in (the database's own
    are left to it, as an ``INSERT`` without them does)."""
    return all(column.default is None for column in table.columns if column.name not in row)


def _stored_values(
    table: Table, names: Sequence[str], dialect: Any
) -> Callable[[Mapping[str, Any]], list[Any]]:
    """A row's values for ``names``, in that order, each converted by its column's type as SQLAlchemy
    converts a bound parameter (JSON serialised, a UTC timestamp made naive on SQLite, ...)."""
    get = operator.itemgetter(*names)
    converters = [
        (n, process)
        for n, name in enumerate(names)
        if (process := table.c[name].type._cached_bind_processor(dialect)) is not None
    ]
    # The last value given and its conversion, per column: a run of the same value (None, the page's
    # timestamp) is converted once.
    last_in: list[Any] = [_NOTHING] * len(names)
    last_out: list[Any] = [None] * len(names)

    def values(row: Mapping[str, Any]) -> list[Any]:
        found = get(row)
        out = list(found) if len(names) > 1 else [found]
        for n, convert in converters:
            value = out[n]
            if value is last_in[n]:
                out[n] = last_out[n]
            else:
                last_in[n] = value
                out[n] = last_out[n] = convert(value)
        return out

    return values


def _values_ignoring_conflicts(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], conflict: Sequence[str]
) -> int:
    """SQLite: the rows as multi-row ``INSERT … VALUES … ON CONFLICT DO NOTHING`` statements through the
    driver, in their order, each value converted as SQLAlchemy converts it: SQLAlchemy's own handling of
    each parameter of each row cost more than SQLite's insert (docs/architecture.md, "Planning at scale")."""
    names = list(rows[0])
    connection = session.connection()
    dialect = connection.dialect
    values = _stored_values(table, names, dialect)
    quote = dialect.identifier_preparer.quote
    head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in names)}) VALUES "  # noqa: S608  names from the table's metadata
    tail = f" ON CONFLICT ({', '.join(quote(name) for name in conflict)}) DO NOTHING"
    one = "(" + ", ".join("?" * len(names)) + ")"
    per_statement = max(1, min(SQLITE_ROWS, SQLITE_PARAMETERS // len(names)))
    inserted = 0
    for start in range(0, len(rows), per_statement):
        page = rows[start : start + per_statement]
        flat: list[Any] = []
        for row in page:
            flat.extend(values(row))
        result = connection.exec_driver_sql(head + ", ".join([one] * len(page)) + tail, tuple(flat))
        inserted += result.rowcount
    return inserted


def _copy_ignoring_conflicts(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], conflict: Sequence[str]
) -> int:
    """PostgreSQL: the rows ``COPY``-ed into a temporary table of the transaction, then ``INSERT … SELECT …
    ON CONFLICT DO NOTHING`` in their order. psycopg formats a ``COPY`` row in C, where the arrays of the
    ``unnest`` form are built value by value in Python (docs/architecture.md, "Planning at scale")."""
    names = list(rows[0])
    values = _stored_values(table, names, session.get_bind().dialect)
    staged = f"copy_{table.name}"
    columns = ", ".join(f'"{name}"' for name in names)
    connection = session.connection().connection.driver_connection
    assert connection is not None
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {staged} ON COMMIT DROP AS "  # noqa: S608  names from the table's metadata
            f"SELECT {columns}, 0 AS copy_order FROM {table.name} WITH NO DATA"
        )
        with cursor.copy(f"COPY {staged} ({columns}, copy_order) FROM STDIN") as copy:
            for order, row in enumerate(rows):
                stored = values(row)
                stored.append(order)
                copy.write_row(stored)
        cursor.execute(
            f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {staged} ORDER BY copy_order "  # noqa: S608
            f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
        )
        inserted: int = cursor.rowcount
        cursor.execute(f"DROP TABLE {staged}")
    return inserted


def _key(table: Table) -> str:
    """The name of the table's (first) primary-key column."""
    return next(iter(table.primary_key.columns)).name


def _insert_pages(session: Session, statement: Insert, rows: Sequence[dict[str, Any]]) -> int:
    names = list(rows[0])
    inserted = 0
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        page = rows[start : start + ROWS_PER_STATEMENT]
        result = session.execute(statement, {f"a_{name}": [row[name] for row in page] for name in names})
        inserted += result.rowcount  # type: ignore[attr-defined]
    return inserted


@functools.cache
def _insert_from_arrays(table: Table, names: tuple[str, ...], conflict: tuple[str, ...] | None) -> Insert:
    arrays = _unnest(table, {name: name for name in names})
    statement = pg_insert(table).from_select(list(names), select(*(arrays.c[name] for name in names)))
    return statement if conflict is None else statement.on_conflict_do_nothing(index_elements=list(conflict))


def update_by_id(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    from_row: Mapping[str, str],
    constants: Mapping[str, Any] | None = None,
    where: Sequence[ColumnElement[bool]] = (),
    only_changes: bool = False,
) -> None:
    """``UPDATE table SET … WHERE id = :b_id AND <where>`` for each row, as an executemany would run them.

    ``rows`` hold ``b_id`` and the keys ``from_row`` maps columns to; ``constants`` are the same for every row;
    ``where`` takes no ``IN`` (an executemany cannot expand it): ``one_of`` is its equivalent. On PostgreSQL
    a row naming an id already in the statement goes to a later one, so a repeated id is updated in the order
    given, guard included. ``only_changes``: a row whose ``from_row`` columns already hold those values is
    left alone (PostgreSQL writes a new version of every row an UPDATE matches, index entries included)."""
    if not rows:
        return
    constants = dict(constants or {})
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        values: dict[str, Any] = {name: bindparam(key) for name, key in from_row.items()}
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"), *where, *_changes(table, values, only_changes))
            .values(values | constants)
        )
        connection.execute(statement, [dict(row) for row in rows])
        return
    given = _unnest(table, {"id": "b_id"} | {name: key for name, key in from_row.items()})
    values = {name: given.c[key] for name, key in from_row.items()}
    statement = (
        update(table)
        .where(table.c.id == given.c.b_id, *where, *_changes(table, values, only_changes))
        .values(values | constants)
    )
    keys = ["b_id", *from_row.values()]
    for page in _pages_of_distinct_ids(rows):
        connection.execute(statement, {f"a_{key}": [row[key] for row in page] for key in keys})


def _changes(table: Table, values: Mapping[str, Any], only_changes: bool) -> list[ColumnElement[bool]]:
    if not only_changes:
        return []
    return [or_(*(table.c[name].is_distinct_from(value) for name, value in values.items()))]


def _unnest(table: Table, columns: Mapping[str, str]) -> Any:
    """``unnest(:a_x::type[], …) AS given(x, …)``: the rows of the arrays ``a_<name>``, one per column
    named in ``columns`` (a table column → the name it has in ``given``)."""
    arrays = [bindparam(f"a_{name}", type_=_array_of(table.c[column])) for column, name in columns.items()]
    return func.unnest(*arrays).table_valued(*columns.values(), name="given").render_derived()


def _array_of(column: Column[Any]) -> ARRAY[Any]:
    # One dimension said outright for JSON: a list of JSON lists would otherwise bind as a 2-D array.
    return ARRAY(column.type, dimensions=1) if isinstance(column.type, JSON) else ARRAY(column.type)


def where_in(
    session: Session, query: Select[Any], key: ColumnElement[Any], values: Sequence[Any]
) -> Select[Any]:
    """``query`` for the rows whose ``key`` is one of ``values``. On PostgreSQL the values go as one array,
    joined (``unnest``): the planner takes that through the key's index whatever the table's statistics, while
    for an IN list of parameters on a table filled in the same transaction (no statistics yet) it may scan the
    whole table, comparing each row with every value."""
    if session.get_bind().dialect.name != "postgresql":
        return query.where(key.in_(values))
    return joined_to_array(query, key, values)


def one_of(target: Column[Any], choices: Sequence[Any]) -> ColumnElement[bool]:
    """``target IN (choices)`` as equalities with fixed parameters, which an executemany accepts."""
    return or_(
        *(
            target == bindparam(f"one_of_{target.name}_{n}", choice)
            for n, choice in enumerate(sorted(choices))
        )
    )


def _pages_of_distinct_ids(rows: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """The first row of each id, then the second of those repeated, and so on, a page at a time."""
    rounds: list[list[Mapping[str, Any]]] = []
    seen: Counter[Any] = Counter()
    for row in rows:
        occurrence = seen[row["b_id"]]
        seen[row["b_id"]] += 1
        if occurrence == len(rounds):
            rounds.append([])
        rounds[occurrence].append(row)
    return [
        found[start : start + ROWS_PER_STATEMENT]
        for found in rounds
        for start in range(0, len(found), ROWS_PER_STATEMENT)
    ]
