"""psycopg connections beside Django's: for the relay and the publishers, whose work spans awaits."""

from django.db import connection


def database_conninfo() -> dict:
    """Return psycopg connection parameters of Django's default database."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    return params
