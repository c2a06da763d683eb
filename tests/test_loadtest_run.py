"""``make loadtest`` end to end: a short headless Locust run against a devstack of the test's own.

The devstack runs with its own embedded servers in a temporary folder; the
runner finds it through its state file (``DEVSTACK_STATE``), as ``make
loadtest`` finds ``make demo``. About 20 s of the flash-sale shape (so every
persona runs) on a flash SKU the runner made scarce, then: no failed request,
every order final, some flash-sale orders rejected (sold out) and none
oversold, the restocker kept off the flash SKU, verify_invariants clean, the
report files written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psycopg
import pytest

from devstack.process import parent_death_signal
from loadtests.check import FLASH_SKU
from tests.pipeline import BASE_DIR
from tests.test_devstack import running_devstack

pytestmark = pytest.mark.pipeline
FLASH_STOCK = 10  # units of the flash SKU when the run starts: a crowd of about 16 sells them in a few seconds


@pytest.fixture
def devstack(tmp_path):
    """Start `manage.py devstack` with its own embedded servers; yield its state file."""
    with running_devstack(tmp_path / "stack"):
        yield tmp_path / "stack" / "state.json"


def test_a_short_loadtest_passes_with_every_order_final_and_writes_its_report(devstack, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NATS_URL") and not k.startswith("LOCUST_")}
    env.update(
        DEVSTACK_STATE=str(devstack),
        LOCUST_RUN_TIME="21s",
        LOCUST_USERS="8",
        LOCUST_SPAWN_RATE="8",
        LOCUST_SHAPE="flash-sale",
    )
    reports = tmp_path / "reports"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtests",
            "--reports",
            str(reports),
            "--max-error-ratio",
            "0",
            "--flash-stock",
            str(FLASH_STOCK),
        ],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=parent_death_signal(signal.SIGTERM),
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "PASS" in output and "report:" in output
    assert "rate limits: off (RATE_LIMITS=0, the devstack's)" in output
    assert f"flash sale: {FLASH_SKU}: received {FLASH_STOCK}, {FLASH_STOCK} available" in output

    (folder,) = reports.iterdir()
    for name in ("report.html", "stats_stats.csv", "stats_failures.csv", "stats_stats_history.csv", "verdict.txt"):
        assert (folder / name).stat().st_size > 0, name
    from loadtests.check import read_totals

    totals = read_totals(folder / "stats_stats.csv")
    assert totals.requests > 50 and totals.failures == 0
    names = {name for _, name in totals.by_name}
    assert {"/", "/api/products?q=[term]", "/api/orders", "/api/orders (flash sale)", "/api/inventory/[sku]"} <= names
    decided = sum(n for (kind, name), (n, _) in totals.by_name.items() if kind == "E2E" and name != "place→final")
    assert decided > 0 and ("E2E", "place→final") not in totals.by_name  # no order timed out
    assert totals.by_name[("E2E", "place→rejected")][0] > 0  # the flash SKU sold out
    assert "all invariants hold" in (folder / "invariants.txt").read_text()

    database_url = json.loads(devstack.read_text())["database_url"]
    with psycopg.connect(database_url) as conn:
        (pending,) = conn.execute("SELECT count(*) FROM shop_order WHERE status = 'pending'").fetchone()
        (orders,) = conn.execute(
            "SELECT count(*) FROM shop_order WHERE email LIKE '%%@loadtest.example.org'"
        ).fetchone()
        (sold_out,) = conn.execute(
            "SELECT count(*) FROM shop_order WHERE status = 'rejected' AND reason LIKE %s", [f"%{FLASH_SKU}%"]
        ).fetchone()
        on_hand, reserved = conn.execute(
            "SELECT on_hand, reserved FROM inventory_stockitem WHERE sku = %s", [FLASH_SKU]
        ).fetchone()
    assert pending == 0 and orders >= decided
    assert sold_out > 0, "no order was rejected for want of the flash SKU"
    assert on_hand == FLASH_STOCK and 0 <= reserved <= on_hand  # never restocked during the run, never oversold
