"""The systems the comparison measures, and the products each is loaded with, found through its HTTP API."""

from __future__ import annotations

from dataclasses import dataclass

from ..load import Connection
from .http import call, host_port

PRODUCTS = 16  # as many as the lab's own catalog: the same spread of row locks on every system
RESTOCK_STEP = 1_000_000  # units per restock request: the project's RESTOCK_MAX_QUANTITY


@dataclass(frozen=True)
class Target:
    """A system that speaks the project's HTTP contract: its name, base URL, where it runs, a staff token."""

    name: str
    url: str
    runs_on: str  # what the table says it is: "lab stack", "devstack", or its URL
    token: str = ""  # staff bearer token, to top its stock up; "" for none

    @property
    def address(self) -> tuple[str, int]:
        """Return its host and port."""
        return host_port(self.url)


def parse_pair(value: str) -> tuple[str, str]:
    """Parse ``NAME=VALUE`` (a name of letters, digits, ``-`` and ``_``); raise ValueError otherwise."""
    name, sep, rest = value.partition("=")
    if not sep or not name or not rest or not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"{value!r} is not NAME=VALUE")
    return name, rest


async def catalog(target: Target) -> dict[str, int]:
    """Return {sku: available} of every product ``GET /api/products`` lists, page after page."""
    conn, found, page, pages = Connection(*target.address), {}, 1, 1
    try:
        while page <= pages:
            status, body = await call(conn, "GET", f"/api/products?page={page}")
            if status != 200 or not isinstance(body, dict):
                raise RuntimeError(f"{target.name}: GET /api/products?page={page} answered HTTP {status}")
            found.update({p["sku"]: int(p.get("available", 0)) for p in body.get("items", [])})
            page, pages = page + 1, int(body.get("pages", 1))
    finally:
        conn.close()
    return found


def choose(products: dict[str, int], n: int = PRODUCTS) -> list[str]:
    """Return ``n`` SKUs, those in stock first, in SKU order."""
    return sorted(products, key=lambda sku: (products[sku] <= 0, sku))[:n]


async def top_up(target: Target, products: dict[str, int], skus: list[str], units: int) -> list[str]:
    """Restock each SKU to at least ``units`` available if a token allows; return a warning per SKU left short."""
    short = {sku: units - products[sku] for sku in skus if products[sku] < units}
    if short and not target.token:
        return [
            f"{target.name}: {len(short)} of its products have fewer than {units} units available and no "
            "--against-token was given to restock them: some orders may be rejected"
        ]
    conn, warnings = Connection(*target.address), []
    try:
        for sku, missing in short.items():
            while missing > 0:
                step = min(missing, RESTOCK_STEP)
                path = f"/api/inventory/{sku}/restock"
                status, _ = await call(conn, "POST", path, {"quantity": step}, target.token)
                if status != 202:
                    warnings.append(f"{target.name}: POST {path} answered HTTP {status}; its orders may be rejected")
                    break
                missing -= step
    finally:
        conn.close()
    return warnings
