"""Migrations that change rows, run forwards on a real database."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(*target: tuple[str, str]):
    """Migrate to ``target`` and return the project state there."""
    executor = MigrationExecutor(connection)
    executor.migrate(list(target))
    executor.loader.build_graph()
    return executor.loader.project_state(list(target)).apps


@pytest.mark.django_db(transaction=True)
def test_dead_letters_kept_before_public_ids_each_get_their_own():
    before = migrate(("events", "0002_storedevent_traceparent"))
    DeadLetter = before.get_model("events", "DeadLetter")
    kept = [
        DeadLetter.objects.create(consumer="shop", subject="x.y", data=b"{}", error="e", deliveries=1).id
        for _ in range(3)
    ]
    try:
        after = migrate(("events", "0003_deadletter_public_id"))
        ids = dict(after.get_model("events", "DeadLetter").objects.values_list("id", "public_id"))
        assert set(ids) == set(kept)
        assert None not in ids.values() and len(set(ids.values())) == 3
    finally:
        migrate(*MigrationExecutor(connection).loader.graph.leaf_nodes())
