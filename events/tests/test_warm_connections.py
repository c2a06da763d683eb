"""A new process opens its pooled database connections before its first request or batch."""

import pytest
from django.db import connection

from events.pg import warm_connections


@pytest.mark.django_db(transaction=True)
def test_warming_opens_as_many_pooled_connections_as_asked_and_gives_them_back():
    pool = connection.pool
    before = pool.get_stats().get("pool_size", 0)
    warm_connections(3)
    stats = pool.get_stats()
    assert stats["pool_size"] >= max(before, 3)
    assert stats.get("pool_available", 0) >= 3 - 1  # back in the pool (this test's own may be out)
