"""Set-based writes for the handlers that take a whole batch of events.

Django's ``bulk_update`` builds a ``CASE WHEN pk = … THEN …`` expression per
row and field, resolved in Python: for a batch of a hundred orders it cost more
of a worker's CPU than every other statement of the batch together (measured
with py-spy under ``make bench``). ``bulk_set`` writes the same rows with one
``UPDATE … FROM unnest(…)``: one array parameter per column, no expression
tree, the same plan whatever the number of rows.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from django.db import connection, models


@functools.cache
def _update_sql(model: type[models.Model], fields: tuple[str, ...]) -> tuple[str, list]:
    """Return bulk_set's statement for these fields of ``model``, and its columns (built once: db_type is slow)."""
    meta = model._meta
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    q = connection.ops.quote_name
    names = ", ".join(q(c.column) for c in columns)
    arrays = ", ".join(f"%s::{c.db_type(connection)}[]" for c in columns)
    assignments = ", ".join(f"{q(c.column)} = v.{q(c.column)}" for c in columns[1:])
    pk = q(meta.pk.column)
    sql = f"UPDATE {q(meta.db_table)} AS t SET {assignments} FROM unnest({arrays}) AS v({names}) WHERE t.{pk} = v.{pk}"
    return sql, columns


@functools.cache
def _insert_sql(model: type[models.Model], fields: tuple[str, ...]) -> str:
    """Return bulk_insert's statement for these fields of ``model`` (built once)."""
    columns = [model._meta.get_field(name) for name in fields]
    q = connection.ops.quote_name
    names = ", ".join(q(c.column) for c in columns)
    arrays = ", ".join(f"%s::{c.db_type(connection)}[]" for c in columns)
    return (
        f"INSERT INTO {q(model._meta.db_table)} ({names}) SELECT {names} "
        f"FROM unnest({arrays}) WITH ORDINALITY AS v({names}, ordinality) ORDER BY ordinality"
    )


def bulk_set(objs: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Write ``fields`` of every object to its row in one UPDATE; return the rows updated.

    The objects must be of one model and already saved (matched by primary key).
    """
    if not objs:
        return 0
    sql, columns = _update_sql(type(objs[0]), tuple(fields))
    params = [[c.get_db_prep_save(getattr(obj, c.attname), connection) for obj in objs] for c in columns]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def bulk_insert(model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Insert ``rows`` (one value per field, ready for the database) in one statement, in their order.

    ``INSERT … SELECT … FROM unnest(…) WITH ORDINALITY ORDER BY``: one array
    per column, so an auto-incrementing key follows the order of ``rows``.
    Django's ``bulk_create`` writes the same rows but builds a model instance
    and prepares every value of every row in Python first; for the outbox of an
    inventory batch that was a third of its CPU (``make bench-batch``).
    """
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(*insert_statement(model, fields, rows))


def insert_statement(model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence]) -> tuple[str, list]:
    """Return bulk_insert's statement and parameters, for a caller to run (or embed as a CTE) itself."""
    return _insert_sql(model, tuple(fields)), [list(column) for column in zip(*rows, strict=True)]
