"""Invariants of the shop, checked by ``verify_invariants``."""

from datetime import timedelta

from django.conf import settings

from .selectors import orders_stuck


def check_orders() -> list[str]:
    """Return orders pending longer than ORDER_PENDING_ALERT_SECONDS."""
    limit = timedelta(seconds=settings.ORDER_PENDING_ALERT_SECONDS)
    return [f"order {o.id} pending since {o.created_at.isoformat()}" for o in orders_stuck(older_than=limit)]
