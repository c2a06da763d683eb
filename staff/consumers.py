"""Staff websocket: every stock level with on hand and reserved, live (staff session only)."""

from __future__ import annotations

import json

from shop import live
from shop.consumers import CountedSocket


class StaffStockConsumer(CountedSocket):
    """``WS /ws/staff/stock/``: ``{sku, on_hand, reserved, available, stock_status, version}`` per change."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not (user.is_active and user.is_staff):
            await self.close(code=4403)
            return
        self.joined = True
        await self.channel_layer.group_add(live.STAFF_STOCK_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "joined", False):
            await self.channel_layer.group_discard(live.STAFF_STOCK_GROUP, self.channel_name)

    async def stock_level(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message["level"]))
