"""Live stock and orders in each web process: a core-NATS feed, a near cache, websocket fan-out.

Every web process subscribes to ``inventory.stock.>`` on core NATS (no durable
state) and keeps the newest level of each SKU in memory, applied only when its
version is newer, so duplicates and reordering are harmless (DESIGN §6). Pages
and the API read stock through this **near cache**; a miss reads the shop's
``StockLevel`` projection, one query for all the SKUs of a page.

The cache holds levels only while the feed is subscribed: a disconnected process
may miss changes, so it forgets everything and reads the projection until it is
back. A level read from the projection (not carried by an event) is kept only
``LIVE_CACHE_MISS_TTL`` seconds, which bounds the one race left: a change
published before this process subscribed but not yet in the projection.

In ASGI processes the feed runs on the server's event loop and also pushes each
change to the Channels groups of its SKU (and an order's events to the group of
that order): each process hears every change itself, so an in-memory channel
layer is enough and no Redis is needed. WSGI workers run the feed in a daemon
thread with its own loop, started on first use in each process.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

from events.base import DecodeError, decode, decode_envelope

from . import metrics
from .inbound import StockLevelChanged
from .models import StockLevel
from .selectors import stock_status

log = logging.getLogger(__name__)

STOCK_SUBJECT = "inventory.stock.>"
ORDER_SUBJECTS = ("shop.order.>", "inventory.reservation.>")
ORDER_PREFIXES = tuple(subject.removesuffix(">") for subject in ORDER_SUBJECTS)
STOCK_TYPES = {(StockLevelChanged.TYPE, StockLevelChanged.VERSION): StockLevelChanged}
# Channels groups: one per SKU, one per order, every stock socket and every staff socket (the last two
# told to resync after a NATS outage).
ALL_STOCK_GROUP = "stock"
STAFF_STOCK_GROUP = "staff.stock"


def stock_group(sku: str) -> str:
    return f"stock.{sku}"


def order_group(order_id: str) -> str:
    return f"order.{order_id}"


# The orders this process has a socket open for (each with its number of sockets): the order events of
# every other order are dropped unread, and a process with no order page open is not even subscribed to
# them (each would otherwise take every order's events off the wire, a few hundred a second under load).
_watched: Counter[str] = Counter()


async def watch_order(order_id: str) -> None:
    """Note a socket of this process following ``order_id``; return once the feed hears its events.

    Called before the socket reads the order's snapshot: an event published
    after this returns reaches the socket, one published before is in the snapshot.
    """
    _watched[order_id] += 1
    feed = _current().feed
    if feed is not None:
        await feed.follow_orders()


async def unwatch_order(order_id: str) -> None:
    """Note that a socket of this process stopped following ``order_id``."""
    _watched[order_id] -= 1
    if _watched[order_id] <= 0:
        del _watched[order_id]
    feed = _current().feed
    if feed is not None:
        await feed.follow_orders()


@dataclass(frozen=True)
class Level:
    """The stock of one SKU as this process knows it."""

    sku: str
    available: int
    version: int
    on_hand: int = 0
    reserved: int = 0
    expires: float = math.inf  # monotonic deadline of a level read from the projection

    def frame(self) -> dict:
        """Return the websocket frame of DESIGN §7."""
        available = max(self.available, 0)
        return {
            "sku": self.sku,
            "available": available,
            "stock_status": stock_status(available),
            "version": self.version,
        }

    def staff_frame(self) -> dict:
        return {**self.frame(), "on_hand": self.on_hand, "reserved": self.reserved}


class NearCache:
    """The newest stock level per SKU in this process, with plain counters for metrics."""

    def __init__(self, miss_ttl: float = 5.0):
        self.miss_ttl = miss_ttl
        self._levels: dict[str, Level] = {}
        self._lock = threading.Lock()
        self._generation = 0
        self.enabled = False  # True only while the feed is subscribed
        self.hits = self.misses = self.applied = self.ignored = 0
        self.staleness_count = 0
        self.staleness_total = 0.0  # seconds from the change in inventory to its arrival here, summed
        self.staleness_max = 0.0

    def apply(self, level: Level, changed_at: datetime | None = None) -> bool:
        """Keep ``level`` if it is newer than what the cache holds; return whether it was."""
        if changed_at is not None:
            lag = max((datetime.now(UTC) - changed_at).total_seconds(), 0.0)
            self.staleness_count += 1
            self.staleness_total += lag
            self.staleness_max = max(self.staleness_max, lag)
            metrics.cache_updated(lag)
        with self._lock:
            current = self._levels.get(level.sku)
            if current is not None and current.version >= level.version:
                self.ignored += 1
                return False
            if self.enabled:
                self._levels[level.sku] = level
            self.applied += 1
            return True

    def get_many(self, skus: Iterable[str]) -> dict[str, Level]:
        """Return the level of each SKU: from memory, else from the projection (one query for all misses)."""
        skus = list(dict.fromkeys(skus))
        now = time.monotonic()
        with self._lock:
            found = {s: lv for s in skus if (lv := self._levels.get(s)) is not None and lv.expires > now}
            generation = self._generation
        missing = [s for s in skus if s not in found]
        self.hits += len(found)
        self.misses += len(missing)
        if found:
            metrics.cache_hit(len(found))
        if missing:
            metrics.cache_miss(len(missing))
        if missing:
            found.update(self._load(missing, now + self.miss_ttl, generation))
        return found

    def _load(self, skus: list[str], expires: float, generation: int) -> dict[str, Level]:
        rows = StockLevel.objects.filter(sku__in=skus).values_list("sku", "available", "version", "on_hand", "reserved")
        loaded = {row[0]: Level(*row, expires=expires) for row in rows}
        loaded = {s: loaded.get(s) or Level(s, 0, 0, expires=expires) for s in skus}
        with self._lock:
            if not self.enabled or generation != self._generation:
                return loaded
            for sku, level in loaded.items():
                current = self._levels.get(sku)
                if current is not None and current.version > level.version:
                    loaded[sku] = current  # an event newer than the projection arrived meanwhile
                else:
                    self._levels[sku] = level
        return loaded

    def clear(self, *, enabled: bool) -> None:
        """Forget every level (it may have missed changes); cache again only if ``enabled``."""
        with self._lock:
            self._levels.clear()
            self._generation += 1
            self.enabled = enabled

    def __len__(self) -> int:
        return len(self._levels)


def level_of(event: StockLevelChanged) -> Level:
    return Level(event.sku, event.available, event.version, event.on_hand, event.reserved)


class Feed:
    """A core-NATS subscription that feeds the near cache and, with a channel layer, the websockets."""

    def __init__(self, cache: NearCache, layer=None):
        self.cache = cache
        self.layer = layer  # a Channels layer on this loop (ASGI processes), or None (WSGI workers)
        self.nc = None
        self.ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._order_subs: list = []  # the order subjects' subscriptions, while an order page is open here
        self._order_lock = asyncio.Lock()

    async def run(self) -> None:
        """Connect (retrying while NATS is down), subscribe, and follow until cancelled."""
        from events import bus

        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self.nc = await bus.connect(
            f"web-live-{os.getpid()}", reconnected_cb=self._on_reconnect, disconnected_cb=self._on_disconnect
        )
        await self.nc.subscribe(STOCK_SUBJECT, cb=self._on_stock)
        await self.follow_orders()
        await self.nc.flush()
        self.cache.clear(enabled=True)
        self.ready.set()
        log.info("live feed subscribed (pid %s, fan-out %s)", os.getpid(), self.layer is not None)
        try:
            await self._stop.wait()
        finally:
            self.cache.clear(enabled=False)
            await self.nc.close()

    async def follow_orders(self) -> None:
        """Be subscribed to the order subjects exactly while some socket here follows an order (fan-out only)."""
        if self.layer is None or self.nc is None:
            return  # not connected yet: run() subscribes if a page is open by then
        async with self._order_lock:
            if _watched and not self._order_subs:
                self._order_subs = [await self.nc.subscribe(s, cb=self._on_order_event) for s in ORDER_SUBJECTS]
                if self.nc.is_connected:
                    try:  # the server has the subscriptions before the caller reads its snapshot
                        await self.nc.flush(timeout=2)
                    except Exception as exc:  # noqa: BLE001  (NATS going away: the client restores them)
                        log.info("live feed: order subscriptions not confirmed: %r", exc)
            elif not _watched and self._order_subs:
                subs, self._order_subs = self._order_subs, []
                for sub in subs:
                    await sub.unsubscribe()

    def stop(self) -> None:
        """Ask the feed to unsubscribe and close (from any thread)."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def _on_disconnect(self) -> None:
        self.cache.clear(enabled=False)

    async def _on_reconnect(self) -> None:
        # Subscriptions are restored by the client, but changes made meanwhile were missed:
        # start again from the projection, and tell every socket to read its levels again.
        self.cache.clear(enabled=True)
        log.info("live feed reconnected (pid %s): near cache cleared", os.getpid())
        if self.layer is not None:
            for group in (ALL_STOCK_GROUP, STAFF_STOCK_GROUP):
                await self.layer.group_send(group, {"type": "stock.resync"})

    async def _on_stock(self, msg) -> None:
        try:
            envelope, event = decode(msg.data, STOCK_TYPES)
        except DecodeError as exc:
            log.warning("live feed: undecodable message on %s: %s", msg.subject, exc)
            return
        if event is None:
            return
        level = level_of(event)
        self.cache.apply(level, envelope.occurred_at)
        # Fan out even a level the cache already had (a page may have read it from the projection
        # first): each socket keeps the newest version it sent, so a repeat goes nowhere.
        if self.layer is not None:
            message = {"type": "stock.level", "level": level.frame()}
            await self.layer.group_send(stock_group(level.sku), message)
            await self.layer.group_send(STAFF_STOCK_GROUP, {"type": "stock.level", "level": level.staff_frame()})

    async def _on_order_event(self, msg) -> None:
        if not _watched:
            return  # no order page open here: nothing to decode
        try:
            envelope, data = decode_envelope(msg.data)
        except DecodeError:
            return
        order_id = str(data.get("order_id") or envelope.correlation_id)
        if order_id not in _watched:
            return
        entry = order_entry(envelope, data)
        if len(order_id) <= 64:
            await self.layer.group_send(order_group(order_id), {"type": "order.event", "entry": entry})


def order_entry(envelope, data: dict) -> dict:
    """Return the timeline entry an order page is sent for one of its events."""
    return {
        "type": envelope.type,
        "at": envelope.occurred_at.isoformat(),
        "event_id": envelope.event_id,
        "detail": str(data.get("reason", ""))[:300],
    }


class _Process:
    """This process's near cache and feed (a forked worker gets its own)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.cache = NearCache(settings.LIVE_CACHE_MISS_TTL)
        self.feed: Feed | None = None
        self.lock = threading.Lock()


_process: _Process | None = None


def _current() -> _Process:
    global _process
    if _process is None or _process.pid != os.getpid():
        _process = _Process()
    return _process


def near_cache() -> NearCache:
    """Return this process's near cache."""
    return _current().cache


def start_in_thread() -> Feed | None:
    """Start this process's feed in a daemon thread with its own loop, once (WSGI workers)."""
    proc = _current()
    with proc.lock:
        if proc.feed is None and settings.LIVE_FEED and settings.NATS_URL:
            proc.feed = Feed(proc.cache)
            threading.Thread(target=asyncio.run, args=(proc.feed.run(),), name="live-feed", daemon=True).start()
    return proc.feed


def start_in_loop() -> Feed | None:
    """Start this process's feed on the running loop, with websocket fan-out, once (ASGI processes)."""
    from channels.layers import get_channel_layer

    proc = _current()
    with proc.lock:
        if proc.feed is None and settings.LIVE_FEED and settings.NATS_URL:
            proc.feed = Feed(proc.cache, get_channel_layer())
            task = asyncio.get_running_loop().create_task(proc.feed.run(), name="live-feed")
            task.add_done_callback(_log_end)
    return proc.feed


def _log_end(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("live feed stopped", exc_info=task.exception())


def stock_levels(skus: Iterable[str]) -> dict[str, Level]:
    """Return the level of each SKU through this process's near cache (starting its feed if needed)."""
    if _current().feed is None:
        start_in_thread()
    return near_cache().get_many(skus)


def availability(skus: Iterable[str]) -> dict[str, int]:
    """Return available units per SKU (never below 0), as pages and the API show them."""
    return {sku: max(level.available, 0) for sku, level in stock_levels(skus).items()}
