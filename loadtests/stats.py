"""Arithmetic the load and latency scripts share."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    """Return the nearest-rank ``q``-quantile (0..1) of ``values``, which need not be sorted."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
