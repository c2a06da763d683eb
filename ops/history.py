"""The ops page's history: the figures once a second, kept in the database, so an incident stays visible.

Every WSGI web process runs one sampler thread (started by ``config/wsgi.py``). Each second it reads
the aggregated metrics and the recent orders' latencies and writes one row keyed by the second; when
several processes sample the same second, the first row wins and the others skip. Rows older than
``OPS_HISTORY_MINUTES`` are deleted as it goes. The page reads the history on load and then follows it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection

from shop.selectors import order_latency_quantiles

from . import selectors
from .models import Sample

log = logging.getLogger(__name__)

LATENCY_WINDOW = 10  # seconds of confirmed orders a quantile is taken over
LATENCY_LOOKBACK = 60  # seconds back an order may have been placed and still count (bounds the read)
PRUNE_EVERY = 60  # samples between two deletions of old rows
_started = threading.Lock()
_thread: threading.Thread | None = None


def latency_now() -> dict:
    """Return p50 and p99 place → confirmed of the orders confirmed in the last LATENCY_WINDOW seconds."""
    orders, (p50, p99) = order_latency_quantiles(
        decided_within=timedelta(seconds=LATENCY_WINDOW),
        placed_within=timedelta(seconds=LATENCY_LOOKBACK),
        quantiles=[0.5, 0.99],
    )
    return {"orders": orders, "p50": p50, "p99": p99, "window": LATENCY_WINDOW}


def sample_now(at: int) -> dict:
    """Return what the history keeps of one second: counters, gauges and the recent latency quantiles."""
    figures = selectors.figures()
    return {
        "at": at,
        "counters": figures["counters"],
        "pending": figures["pending"],
        "outbox": figures["outbox"],
        "websockets": figures["websockets"],
        "latency": latency_now(),
    }


def record(at: int) -> bool:
    """Write the sample of second ``at`` unless a process did already; return whether this one did."""
    if Sample.objects.filter(at=at).exists():
        return False
    Sample.objects.bulk_create([Sample(at=at, figures=sample_now(at))], ignore_conflicts=True)
    return True


def prune(now: float) -> None:
    Sample.objects.filter(at__lt=now - settings.OPS_HISTORY_MINUTES * 60).delete()


def history(*, since: float) -> list[dict]:
    """Return the samples after ``since`` (unix seconds), oldest first, within the kept history."""
    oldest = time.time() - settings.OPS_HISTORY_MINUTES * 60
    return list(Sample.objects.filter(at__gt=max(since, oldest)).values_list("figures", flat=True))


def _run() -> None:
    count = 0
    while True:
        now = time.time()
        # Processes wake at different moments of the second, so they rarely compute the same one twice.
        time.sleep(1 - now % 1 + random.uniform(0.05, 0.3))
        try:
            record(int(time.time()))
            count += 1
            if count % PRUNE_EVERY == 1:
                prune(time.time())
        except Exception:  # the database may be away for a while: the page shows a gap, not a crash
            log.warning("ops history: cannot record a sample", exc_info=True)
        finally:
            connection.close()  # back to the pool between samples


def start() -> None:
    """Start this process's sampler thread (once), unless OPS_HISTORY_MINUTES is 0."""
    global _thread
    with _started:
        if _thread is None and settings.OPS_HISTORY_MINUTES > 0:
            _thread = threading.Thread(target=_run, name="ops-history", daemon=True)
            _thread.start()
