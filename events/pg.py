"""psycopg connections beside Django's (for the relay and the publishers, whose work spans awaits), and warming
Django's own."""

import logging
import threading

from django.db import connection

log = logging.getLogger(__name__)


def database_conninfo() -> dict:
    """Return psycopg connection parameters of Django's default database."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    return params


def warm_connections(count: int = 1) -> None:
    """Open ``count`` of Django's pooled connections at once and give them back to the pool.

    A new process's first request or batch otherwise opened its connection (and the pool) itself:
    tens of milliseconds on the first orders after every start. A database that is away only
    leaves the pool cold, with a warning: the process starts all the same.
    """
    together = threading.Barrier(count)

    def one() -> None:
        try:
            connection.ensure_connection()
            together.wait(timeout=10)  # all open at once: the pool must hand out ``count`` distinct ones
        except Exception as exc:  # noqa: BLE001  (any failure here only means a cold start)
            log.warning("cannot open a database connection ahead of the work: %r", exc)
        finally:
            connection.close()  # back to the pool

    threads = [threading.Thread(target=one, name="warm-db") for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
