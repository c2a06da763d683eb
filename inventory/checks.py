"""Invariants of the inventory, checked by ``verify_invariants``."""

from .projections import differences
from .selectors import stock_violations


def check_stock() -> list[str]:
    """Return oversold or negative stock, and stock that differs from the event log."""
    return [f"oversell or negative stock: {v}" for v in stock_violations()] + differences()
