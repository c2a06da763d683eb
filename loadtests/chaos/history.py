"""The checks of a phase's history, Jepsen-style: what the client was told against what the system holds.

Every query of the chaos run is here, in plain SQL on the devstack's
database (the run imports no Django: each stack it starts has a database of
its own). Definitions, per phase (its orders carry the phase's e-mail):

- **lost**: an order the client got a 202 for that the shop does not have.
- **doubled**: a key answered with two order ids, or an order decided twice
  (two reservation decisions in inventory's log, or two final entries on its
  timeline).
- **unexpected**: an order of the phase that no 202 named, an order in an
  unknown status, or a 4xx answer to a good order.
- **stuck**: an accepted order still pending once the phase has drained.

And over the whole database after each phase: no SKU oversold, stock
conserved (each SKU's on hand is the sum of its ``StockReceived`` events,
and what it holds reserved is what its confirmed orders asked for), and the
shop's stock projection equal to inventory's stock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import psycopg

from .load import History

FINAL_STATUSES = ("confirmed", "rejected", "cancelled")
FINAL_TYPES = ("OrderConfirmed", "OrderRejected", "OrderCancelled")
DECISION_TYPES = ("StockReserved", "StockReservationRejected")


@dataclass
class Verdict:
    """The counts of one phase's checks, each to be zero, and what each found."""

    lost: int = 0
    doubled: int = 0
    unexpected: int = 0
    stuck: int = 0
    oversold: int = 0
    unconserved: int = 0  # SKUs whose stock is not what their events and confirmed orders say
    projection: int = 0  # SKUs whose projection differs from inventory's stock
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        counts = (self.lost, self.doubled, self.unexpected, self.stuck, self.oversold, self.unconserved)
        return not any(counts) and not self.projection and not self.problems

    def note(self, what: str, items: list) -> int:
        """Remember a few of ``items`` under ``what``; return how many there are."""
        if items:
            self.problems.append(
                f"{what}: {len(items)} ({', '.join(map(str, items[:3]))}{'…' if len(items) > 3 else ''})"
            )
        return len(items)


def pending_anywhere(conn: psycopg.Connection) -> int:
    """Return how many orders of the whole shop are still pending."""
    return conn.execute("SELECT count(*) FROM shop_order WHERE status = 'pending'").fetchone()[0]


def first_decided_after(conn: psycopg.Connection, email: str, after: float) -> float | None:
    """Return when the first order of ``email`` first sent at or after ``after`` was decided (epoch seconds)."""
    row = conn.execute(
        """
        SELECT extract(epoch FROM min(t.at)) FROM shop_timelineentry t JOIN shop_order o ON o.id = t.order_id
        WHERE o.email = %s AND o.created_at >= to_timestamp(%s) AND t.type = ANY(%s)
        """,
        [email, after, list(FINAL_TYPES)],
    ).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def check_orders(conn: psycopg.Connection, history: History, verdict: Verdict) -> None:
    """Count the phase's lost, doubled, unexpected and stuck orders."""
    told = {a.order_id for a in history.accepted if a.order_id}
    verdict.doubled += verdict.note(
        "keys answered with two orders", [a.key for a in history.attempts if len(a.ids) > 1]
    )
    verdict.unexpected += verdict.note("4xx to a good order", [a.unexpected for a in history.attempts if a.unexpected])
    rows = conn.execute("SELECT id::text, status FROM shop_order WHERE email = %s", [history.email]).fetchall()
    held = dict(rows)
    verdict.lost += verdict.note("accepted but missing", sorted(told - set(held)))
    verdict.unexpected += verdict.note("orders no 202 named", sorted(set(held) - told))
    unknown = [f"{i} {s}" for i, s in held.items() if s not in (*FINAL_STATUSES, "pending")]
    verdict.unexpected += verdict.note("orders in an unknown status", unknown)
    verdict.stuck += verdict.note("still pending", sorted(i for i in told if held.get(i) == "pending"))
    ids = list(told)
    decided_twice = conn.execute(
        """
        SELECT convert_from(payload, 'UTF8')::jsonb #>> '{data,order_id}' AS order_id FROM events_storedevent
        WHERE type = ANY(%s) AND convert_from(payload, 'UTF8')::jsonb #>> '{data,order_id}' = ANY(%s)
        GROUP BY 1 HAVING count(*) > 1
        """,
        [list(DECISION_TYPES), ids],
    ).fetchall()
    verdict.doubled += verdict.note("orders reserved or rejected twice", [r[0] for r in decided_twice])
    final_twice = conn.execute(
        """
        SELECT order_id::text FROM shop_timelineentry WHERE order_id::text = ANY(%s) AND type = ANY(%s)
        GROUP BY order_id HAVING count(*) > 1
        """,
        [ids, list(FINAL_TYPES)],
    ).fetchall()
    verdict.doubled += verdict.note("orders with two final entries", [r[0] for r in final_twice])


def check_stock(conn: psycopg.Connection, verdict: Verdict) -> None:
    """Count oversold SKUs and SKUs whose stock is not conserved (over the whole shop)."""
    oversold = conn.execute(
        "SELECT sku FROM inventory_stockitem WHERE reserved > on_hand OR reserved < 0 OR on_hand < 0"
    ).fetchall()
    verdict.oversold += verdict.note("oversold SKUs", [r[0] for r in oversold])
    unconserved = conn.execute(
        """
        WITH received AS (
            SELECT convert_from(payload, 'UTF8')::jsonb #>> '{data,sku}' AS sku,
                   sum((convert_from(payload, 'UTF8')::jsonb #>> '{data,quantity}')::bigint) AS units
            FROM events_storedevent WHERE type = 'StockReceived' GROUP BY 1
        ), asked AS (
            SELECT l.sku, sum(l.quantity) AS units FROM shop_orderline l JOIN shop_order o ON o.id = l.order_id
            WHERE o.status = 'confirmed' GROUP BY l.sku
        )
        SELECT s.sku, s.on_hand, coalesce(r.units, 0), s.reserved, coalesce(a.units, 0)
        FROM inventory_stockitem s LEFT JOIN received r ON r.sku = s.sku LEFT JOIN asked a ON a.sku = s.sku
        WHERE s.on_hand <> coalesce(r.units, 0) OR s.reserved <> coalesce(a.units, 0)
        """
    ).fetchall()
    described = [
        f"{sku} on hand {oh} received {rc} reserved {rs} confirmed {ak}" for sku, oh, rc, rs, ak in unconserved
    ]
    verdict.unconserved += verdict.note("SKUs whose stock is not conserved", described)


def projection_differences(conn: psycopg.Connection) -> list[str]:
    """Return the SKUs whose shop projection differs from inventory's stock (or is missing)."""
    rows = conn.execute(
        """
        SELECT s.sku FROM inventory_stockitem s LEFT JOIN shop_stocklevel p ON p.sku = s.sku
        WHERE p.sku IS NULL OR (p.on_hand, p.reserved, p.available, p.version)
              <> (s.on_hand, s.reserved, s.on_hand - s.reserved, s.version)
        """
    ).fetchall()
    return [r[0] for r in rows]


def wait_until(predicate, timeout: float, interval: float = 0.25):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(interval)
    return value
