"""Abuse limits: a token bucket per client address and per API token, kept in the Django cache.

A flash-sale bot placing sixty orders in half a second is OWASP API6,
"unrestricted access to a sensitive business flow"
(https://owasp.org/API-Security/editions/2023/en/0xa6-unrestricted-access-to-sensitive-business-flows/).
``@rate_limited("orders")`` gives each scope of ``settings.RATE_LIMIT_RULES``
(capacity, period) one bucket per client address and one per ``Bearer`` token:
``capacity`` writes at once, refilled at ``capacity`` per ``period`` seconds. A
write finding either bucket empty is answered 429 with ``Retry-After``.

The buckets live in the default cache: shared by every process with
``REDIS_URL``, per process with the local-memory cache. Reading and writing a
bucket are two cache calls, not one atomic step, so processes racing on one
bucket may let a request or two more through; this is abuse control, not
accounting. With ``RATE_LIMITS`` off the decorator only calls the view.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .api import error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_lock = threading.Lock()  # makes a bucket's read and write one step among the threads of a process


def client_address(request: HttpRequest) -> str:
    """Return the client's address: REMOTE_ADDR, or the one ``RATE_LIMIT_PROXIES`` proxies forwarded."""
    proxies = settings.RATE_LIMIT_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "") if proxies else ""
    if forwarded:
        # Each proxy appends the address it saw: the one the nearest trusted proxy saw is the client.
        hops = [hop.strip() for hop in forwarded.split(",")]
        return hops[-proxies] if len(hops) >= proxies else hops[0]
    return request.META.get("REMOTE_ADDR", "")


def identities(request: HttpRequest) -> list[str]:
    """Return the buckets a request draws from: its address's, and its Bearer token's if it sends one."""
    found = [f"addr:{client_address(request)}"]
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        found.append("token:" + hashlib.sha256(header.encode()).hexdigest()[:32])
    return found


def take(scope: str, who: list[str], capacity: int, period: float, now: float | None = None) -> float:
    """Take a token from each bucket of ``who``; return 0, or the seconds to wait when one is empty."""
    now = time.time() if now is None else now  # wall time: the buckets are shared between processes
    refill = capacity / period  # tokens a second
    cache = caches[settings.RATE_LIMIT_CACHE]
    keys = [f"ratelimit:{scope}:{name}" for name in who]
    with _lock:
        stored = cache.get_many(keys)
        left = {}
        for key in keys:
            tokens, stamp = stored.get(key, (capacity, now))
            left[key] = min(capacity, tokens + max(0.0, now - stamp) * refill)
        wait = max((1 - tokens) / refill for tokens in left.values())
        if wait > 0:
            return wait
        # An idle bucket is full again after ``period``: let the cache forget it then.
        cache.set_many({key: (tokens - 1, now) for key, tokens in left.items()}, timeout=math.ceil(period) + 1)
    return 0.0


def too_many(request: HttpRequest, wait: float, *, page: bool) -> HttpResponse:
    """Return the 429 answer, the JSON error or a ``page``, with ``Retry-After`` in whole seconds."""
    seconds = max(1, math.ceil(wait))
    if page:
        response = render(request, "429.html", {"seconds": seconds}, status=429)
    else:
        message = f"too many requests from this client: try again in {seconds} s"
        response = error_response(429, "rate_limited", message)
    response["Retry-After"] = str(seconds)
    return response


def rate_limited(scope: str, *, page: bool = False) -> Callable:
    """Limit the writes (not GET or HEAD) of a view by the rule ``scope`` of ``RATE_LIMIT_RULES``.

    Refused, an API view answers the JSON error of DESIGN §7, a ``page`` view the page ``429.html``.
    """

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any):
            if settings.RATE_LIMITS and request.method not in SAFE_METHODS:
                capacity, period = settings.RATE_LIMIT_RULES[scope]
                wait = take(scope, identities(request), capacity, period)
                if wait:
                    return too_many(request, wait, page=page)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
