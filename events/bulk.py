"""Set-based writes for the handlers that take a whole batch of events.

Django's ``bulk_update`` builds a ``CASE WHEN pk = … THEN …`` expression per
row and field, resolved in Python: for a batch of a hundred orders it cost more
of a worker's CPU than every other statement of the batch together (measured
with py-spy under ``make bench``). ``bulk_set`` writes the same rows with one
``UPDATE … FROM unnest(…)``: one array parameter per column, no expression
tree, the same plan whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models


def bulk_set(objs: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Write ``fields`` of every object to its row in one UPDATE; return the rows updated.

    The objects must be of one model and already saved (matched by primary key).
    """
    if not objs:
        return 0
    meta = objs[0]._meta
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    names = ", ".join(connection.ops.quote_name(c.column) for c in columns)
    arrays = ", ".join(f"%s::{c.db_type(connection)}[]" for c in columns)
    assignments = ", ".join(f"{connection.ops.quote_name(c.column)} = v.{connection.ops.quote_name(c.column)}"
                            for c in columns[1:])  # fmt: skip
    pk = connection.ops.quote_name(meta.pk.column)
    sql = (
        f"UPDATE {connection.ops.quote_name(meta.db_table)} AS t SET {assignments} "
        f"FROM unnest({arrays}) AS v({names}) WHERE t.{pk} = v.{pk}"
    )
    params = [[c.get_db_prep_save(getattr(obj, c.attname), connection) for obj in objs] for c in columns]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
