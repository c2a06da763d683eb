"""Set-based writes for the handlers that take a whole batch of events.

Django's ``bulk_update`` builds a ``CASE WHEN pk = … THEN …`` expression per
row and field, resolved in Python: for a batch of a hundred orders it cost more
of a worker's CPU than every other statement of the batch together (measured
with py-spy under ``make bench``). ``bulk_set`` writes the same rows with one
``UPDATE … FROM`` the rows of one JSON parameter: no expression tree, the same
plan whatever the number of rows. ``write_together`` runs
several of them as one statement: a consumer batch's writes cost one round
trip to PostgreSQL instead of one per table.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Iterable, Sequence

from django.db import connection, models
from psycopg.types.json import Jsonb


def _rows_sql(columns: list[models.Field]) -> str:
    """Return a subquery ``v`` of the JSON rows of the one parameter, a column each, and their ordinality.

    One parameter whatever the number of rows and columns: a JSON array of rows, each an array of
    values (``_rows_json``), made by the json module's C encoder. psycopg's client-side quoting of
    one array parameter per column ran in Python, element by element (py-spy: a tenth of a
    worker's CPU, and of a web worker's placing orders).
    """
    q = connection.ops.quote_name
    values = []
    for i, c in enumerate(columns):
        db_type = c.db_type(connection)
        value = f"decode(r.elem->>{i}, 'hex')" if db_type == "bytea" else f"(r.elem->>{i})::{db_type}"
        values.append(f"{value} AS {q(c.column)}")
    return (
        f"(SELECT {', '.join(values)}, r.ordinality "
        "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS r(elem, ordinality)) AS v"
    )


def _json_value(value):
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, Jsonb):
        return json.dumps(value.obj)
    return str(value)  # UUID, Decimal


def _rows_json(rows: Iterable[Sequence]) -> str:
    """Return ``rows`` (values ready for the database) as the JSON parameter ``_rows_sql`` reads."""
    return json.dumps([list(row) for row in rows], default=_json_value, separators=(",", ":"))


@functools.cache
def _update_sql(model: type[models.Model], fields: tuple[str, ...]) -> tuple[str, list]:
    """Return bulk_set's statement for these fields of ``model``, and its columns (built once: db_type is slow)."""
    meta = model._meta
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    q = connection.ops.quote_name
    assignments = ", ".join(f"{q(c.column)} = v.{q(c.column)}" for c in columns[1:])
    pk = q(meta.pk.column)
    sql = f"UPDATE {q(meta.db_table)} AS t SET {assignments} FROM {_rows_sql(columns)} WHERE t.{pk} = v.{pk}"
    return sql, columns


@functools.cache
def _insert_sql(model: type[models.Model], fields: tuple[str, ...], where: str = "") -> str:
    """Return bulk_insert's statement for these fields of ``model``, rows kept if ``where`` (built once)."""
    columns = [model._meta.get_field(name) for name in fields]
    q = connection.ops.quote_name
    names = ", ".join(q(c.column) for c in columns)
    return (
        f"INSERT INTO {q(model._meta.db_table)} ({names}) SELECT {names} FROM {_rows_sql(columns)} "
        f"{f'WHERE {where} ' if where else ''}ORDER BY ordinality"
    )


def bulk_set(objs: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Write ``fields`` of every object to its row in one UPDATE; return the rows updated.

    The objects must be of one model and already saved (matched by primary key).
    """
    if not objs:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(*update_statement(objs, fields))
        return cursor.rowcount


def update_statement(objs: Sequence[models.Model], fields: Sequence[str]) -> tuple[str, list]:
    """Return bulk_set's statement and parameters, for a caller to run (or embed as a CTE) itself."""
    sql, columns = _update_sql(type(objs[0]), tuple(fields))
    return sql, [_rows_json([c.get_db_prep_save(getattr(obj, c.attname), connection) for c in columns] for obj in objs)]


def bulk_insert(model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Insert ``rows`` (one value per field, ready for the database) in one statement, in their order.

    ``INSERT … SELECT … FROM jsonb_array_elements(…) WITH ORDINALITY ORDER BY``:
    one JSON parameter, so an auto-incrementing key follows the order of ``rows``.
    Django's ``bulk_create`` writes the same rows but builds a model instance
    and prepares every value of every row in Python first; for the outbox of an
    inventory batch that was a third of its CPU (``make bench-batch``).
    """
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(*insert_statement(model, fields, rows))


def insert_statement(
    model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence], where: str = ""
) -> tuple[str, list]:
    """Return bulk_insert's statement and parameters, for a caller to run (or embed as a CTE) itself.

    ``where`` keeps only the rows it is true of (a condition on ``v.<column>``,
    e.g. on another CTE of the statement it is embedded in).
    """
    return _insert_sql(model, tuple(fields), where), [_rows_json(rows)]


Statement = tuple[str, list]


def write_together(*statements: Statement | None) -> None:
    """Run several INSERT or UPDATE statements (of different tables) as one: one round trip, not one each.

    Each becomes a data-modifying CTE of a single statement; PostgreSQL runs
    every one of them once and to completion, on one snapshot, so none may
    read what another writes (hence: different tables, independent rows).
    ``None`` entries (nothing to write) are left out.
    """
    parts = [statement for statement in statements if statement is not None]
    if not parts:
        return
    if len(parts) == 1:
        sql, params = parts[0]
    else:
        sql = "WITH " + ", ".join(f"w{i} AS ({part})" for i, (part, _) in enumerate(parts)) + " SELECT 1"
        params = [param for _, part_params in parts for param in part_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
