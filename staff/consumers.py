"""Staff websocket: every stock level with on hand and reserved, live (staff session only)."""

from __future__ import annotations

import json

from channels.db import database_sync_to_async

from shop import live
from shop.consumers import CountedSocket

from .selectors import stock_rows


class StaffStockConsumer(CountedSocket):
    """``WS /ws/staff/stock/``: every row's level on connect, then each change.

    A frame is ``{sku, on_hand, reserved, available, stock_status, version}``; the
    page keeps the newest version of each row, so a level sent twice is harmless.
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
        """NATS was away: changes may have been missed, so send every row again."""
        await self._send_current()

    async def _send_current(self) -> None:
        for frame in await database_sync_to_async(current_levels)():
            await self.send(text_data=json.dumps(frame))


def current_levels() -> list[dict]:
    """Return the frame of every stock row, read as the inventory page reads them."""
    return [
        live.Level(item.sku, item.available, item.version, item.on_hand, item.reserved).staff_frame()
        for item, _name in stock_rows()
    ]
