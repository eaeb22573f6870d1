"""Helpers every table module shares: records as dicts, list arguments, the unset marker."""

import datetime
from typing import Any

import sqlalchemy as sa

UNSET = object()


def to_dict(row) -> dict[str, Any] | None:
    """An ORM object, or a Core row of a whole table, as a dict keyed by column."""
    if row is None:
        return None
    if isinstance(row, sa.Row):
        return dict(row._mapping)
    out = {}
    for col in row.__table__.columns:
        key = col.key
        attr = 'metadata_' if col.key == 'metadata' else col.key
        out[key] = getattr(row, attr)
    return out


# table -> its INSERT ... RETURNING every column, built at first use.
_INSERT_RETURNING: dict[sa.Table, Any] = {}


def insert_row(conn, table: sa.Table, values: dict) -> dict:
    """Insert one row into ``table`` with plain Core (no ORM unit of work) and return it
    whole, as to_dict gives it: read back by INSERT ... RETURNING where the database has
    it, else by the primary key the insert produced."""
    if conn.dialect.insert_returning:
        statement = _INSERT_RETURNING.get(table)
        if statement is None:
            statement = _INSERT_RETURNING.setdefault(
                table, table.insert().returning(*table.c))
        return to_dict(conn.execute(statement, values).first())
    key = conn.execute(table.insert(), values).inserted_primary_key
    where = [col == value for col, value in zip(table.primary_key.columns, key, strict=True)]
    return to_dict(conn.execute(sa.select(table).where(*where)).first())


def coerce(model, values: dict) -> dict:
    """Turn ISO strings (datetimes that crossed RPC as JSON) back into datetimes."""
    for key, value in values.items():
        if isinstance(value, str):
            col = model.__table__.columns.get(key)
            if col is not None and isinstance(col.type, sa.DateTime):
                values[key] = datetime.datetime.fromisoformat(value.rstrip('Z'))
    return values


def as_list(value) -> list:
    if value is None or value is UNSET:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


def merged(row, values: dict) -> dict:
    """A row as a dict with ``values`` (attribute names, as written) applied: what a
    successful UPDATE of a row this transaction read has made of it."""
    out = to_dict(row)
    for key, value in values.items():
        out['metadata' if key == 'metadata_' else key] = value
    return out
