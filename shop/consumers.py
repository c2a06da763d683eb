"""Websockets of the storefront (DESIGN §7): live stock levels, one order's progress, and the staff's stock.

Changes reach them from this process's live feed (``shop/live.py``) through
Channels groups; what a socket is sent first comes from the database (the
shop's own tables: its stock projection and its orders).
"""

from __future__ import annotations

import json
import uuid

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from events.base import DecodeError, decode_envelope, is_sku

from . import live
from .metrics import order_event_pushed, websocket_closed, websocket_opened
from .models import Order
from .selectors import order_events_payloads, stock_levels_all

MAX_FRAME = 16 * 1024
FINAL = {"OrderConfirmed", "OrderRejected", "OrderCancelled"}


class CountedSocket(AsyncWebsocketConsumer):
    """A websocket counted in the ``websocket_connections`` gauge from its accept to its disconnect."""

    async def accept(self, subprotocol=None, headers=None) -> None:
        await super().accept(subprotocol, headers)
        if not getattr(self, "counted", False):
            self.counted = True
            websocket_opened()

    async def websocket_disconnect(self, message) -> None:
        if getattr(self, "counted", False):
            self.counted = False
            websocket_closed()
        await super().websocket_disconnect(message)


class StockConsumer(CountedSocket):
    """``WS /ws/stock/``: send ``{"subscribe": [sku, ...]}``; get each SKU's level now, then every change."""

    async def connect(self) -> None:
        self.skus: set[str] = set()
        self.versions: dict[str, int] = {}
        await self.accept()
        await self.channel_layer.group_add(live.ALL_STOCK_GROUP, self.channel_name)

    async def disconnect(self, code: int) -> None:
        for group in [live.ALL_STOCK_GROUP, *map(live.stock_group, self.skus)]:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        skus, problem = self._parse(text_data)
        if problem:
            await self._error(*problem)
            return
        new = [s for s in skus if s not in self.skus]
        if len(self.skus) + len(new) > settings.LIVE_MAX_SKUS:
            await self._error("too_many", f"a socket may follow at most {settings.LIVE_MAX_SKUS} SKUs")
            return
        # Join first, then read: a change in between is sent twice at worst, never lost.
        for sku in new:
            self.skus.add(sku)
            await self.channel_layer.group_add(live.stock_group(sku), self.channel_name)
        await self._send_current(new)

    def _parse(self, text: str | None) -> tuple[list[str], tuple[str, str] | None]:
        """Return the SKUs a frame subscribes to, or the error to answer."""
        if text is None or len(text) > MAX_FRAME:
            return [], ("invalid", f"send a JSON text frame of at most {MAX_FRAME} bytes")
        try:
            body = json.loads(text)
        except (ValueError, RecursionError):
            return [], ("invalid_json", "the frame is not valid JSON")
        skus = body.get("subscribe") if isinstance(body, dict) else None
        if not isinstance(skus, list) or not skus:
            return [], ("invalid", 'send {"subscribe": [sku, ...]}')
        if len(skus) > settings.LIVE_MAX_SKUS:
            return [], ("too_many", f"a socket may follow at most {settings.LIVE_MAX_SKUS} SKUs")
        bad = [s for s in skus if not is_sku(s)]
        if bad:
            return [], ("invalid_sku", f"not a valid SKU: {str(bad[0])[:70]!r}")
        return list(dict.fromkeys(skus)), None

    async def _send_current(self, skus) -> None:
        levels = await database_sync_to_async(live.near_cache().get_many)(list(skus))
        for level in levels.values():
            await self._send_level(level.frame())

    async def _send_level(self, frame: dict) -> None:
        if self.versions.get(frame["sku"], -1) >= frame["version"] and frame["version"] > 0:
            return  # the socket already has this version or a newer one
        self.versions[frame["sku"]] = frame["version"]
        await self.send(text_data=json.dumps(frame))

    async def _error(self, code: str, message: str) -> None:
        await self.send(text_data=json.dumps({"error": {"code": code, "message": message}}))

    async def stock_level(self, message: dict) -> None:
        await self._send_level(message["level"])

    async def stock_resync(self, message: dict) -> None:
        """NATS was away: what this process knew may be stale, so send every level again from the projection."""
        self.versions.clear()
        await self._send_current(self.skus)


class StaffStockConsumer(CountedSocket):
    """``WS /ws/staff/stock/`` (a staff session only): every SKU's level on connect, then each change.

    A frame is ``{sku, on_hand, reserved, available, stock_status, version}``; the
    page keeps the newest version of each row, so a level sent twice, or older
    than the row the page was rendered with, is harmless.
    """

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not (user.is_active and user.is_staff):
            await self.close(code=4403)
            return
        self.joined = True
        # Join first, then read: a change in between is sent twice at worst, never lost.
        await self.channel_layer.group_add(live.STAFF_STOCK_GROUP, self.channel_name)
        await self.accept()
        await self._send_current()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "joined", False):
            await self.channel_layer.group_discard(live.STAFF_STOCK_GROUP, self.channel_name)

    async def stock_level(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message["level"]))

    async def stock_resync(self, message: dict) -> None:
        """NATS was away: changes may have been missed, so send every level again from the projection."""
        await self._send_current()

    async def _send_current(self) -> None:
        for frame in await database_sync_to_async(staff_levels)():
            await self.send(text_data=json.dumps(frame))


def staff_levels() -> list[dict]:
    """Return the staff frame of every SKU in the stock projection."""
    return [
        live.Level(row.sku, row.available, row.version, row.on_hand, row.reserved).staff_frame()
        for row in stock_levels_all()
    ]


class OrderConsumer(CountedSocket):
    """``WS /ws/orders/{id}/``: the order's status and timeline now, then each event as it happens."""

    async def connect(self) -> None:
        self.order_id = str(self.scope["url_route"]["kwargs"]["order_id"])
        try:
            uuid.UUID(self.order_id)
        except ValueError:
            await self.close(code=4404)
            return
        await live.watch_order(self.order_id)
        self.watching = True
        await self.channel_layer.group_add(live.order_group(self.order_id), self.channel_name)
        snapshot = await database_sync_to_async(order_snapshot)(self.order_id)
        if snapshot is None:
            await self._unwatch()
            await self.close(code=4404)
            return
        await self.accept()
        await self.send(text_data=json.dumps(snapshot))

    async def disconnect(self, code: int) -> None:
        await self._unwatch()

    async def _unwatch(self) -> None:
        if getattr(self, "watching", False):
            self.watching = False
            await self.channel_layer.group_discard(live.order_group(self.order_id), self.channel_name)
            await live.unwatch_order(self.order_id)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        pass  # this socket only speaks

    async def order_event(self, message: dict) -> None:
        entry = message["entry"]
        await self.send(text_data=json.dumps({"type": "event", "entry": entry}))
        order_event_pushed(entry["type"], entry["at"])
        if entry["type"] in FINAL:
            # The shop committed this decision with its timeline before the relay published it:
            # the database now holds the whole story, so send it as it is stored.
            snapshot = await database_sync_to_async(order_snapshot)(self.order_id)
            if snapshot is not None:
                await self.send(text_data=json.dumps(snapshot))


def order_snapshot(order_id: str) -> dict | None:
    """Return an order's status and timeline as the database holds them, or None."""
    order = Order.objects.filter(id=order_id).first()
    if order is None:
        return None
    timeline = [
        {"type": t.type, "at": t.at.isoformat(), "event_id": str(t.event_id), "detail": t.detail}
        for t in order.timeline.all()
    ]
    # The order's events the live feed pushes, from the log: one committed before this socket
    # watched the order may have passed this process by, before the shop noted it on the timeline.
    noted = {entry["event_id"] for entry in timeline}
    for payload in order_events_payloads(order_id=order_id, prefixes=live.ORDER_PREFIXES):
        try:
            envelope, data = decode_envelope(bytes(payload))
        except DecodeError:
            continue
        if envelope.event_id not in noted:
            timeline.append(live.order_entry(envelope, data))
    timeline.sort(key=lambda entry: entry["at"])
    return {
        "type": "snapshot",
        "id": str(order.id),
        "status": order.status,
        "reason": order.reason,
        "timeline": timeline,
    }
