"""A read model that can be dropped and rebuilt from the event log."""

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Projection:
    """``rebuild()`` replaces the read model from the log and returns a row count;
    ``differences()`` lists where the live read model and the log disagree."""

    name: str
    rebuild: Callable[[], int]
    differences: Callable[[], list[str]]


def configured_projections() -> list[Projection]:
    """Return the projections listed in settings.EVENT_PROJECTIONS."""
    return [import_string(path) for path in settings.EVENT_PROJECTIONS]
