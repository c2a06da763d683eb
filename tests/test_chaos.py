"""``make chaos``: its history checks find what they are for, and a short run of two faults passes end to end.

The checks are shown failing on purpose against a real pipeline's end state
(an order told accepted but missing, one nobody was told of, one decided
twice, stock held that no confirmed order asked for), so a run that reports zeros means zeros. Then
the command itself runs as ``make chaos`` runs it, on a devstack of its own,
with two faults and a short load, and its report is read back.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from django.utils import timezone

from devstack.process import parent_death_signal
from events.base import Line
from events.models import StoredEvent
from inventory.models import StockItem
from loadtests.chaos.__main__ import parse
from loadtests.chaos.history import Verdict, check_orders, check_stock, projection_differences
from loadtests.chaos.load import Attempt, History
from loadtests.chaos.report import DOCS_BEGIN, DOCS_END, write_docs
from shop.models import Order
from shop.services import order_place
from tests.pipeline import BASE_DIR, database_url_for_tests, wait_for
from tests.test_devstack import alive

pytestmark = pytest.mark.pipeline

EMAIL = "chaos-test@example.org"


def told(orders: list[Order]) -> History:
    """Return the history of a load that got a 202 for each of ``orders``."""
    history = History(email=EMAIL)
    for order in orders:
        attempt = Attempt(str(order.id), [], time.time(), tries=1, ids={str(order.id)}, accepted_at=time.time())
        history.attempts.append(attempt)
    return history


def verdict_of(history: History) -> Verdict:
    verdict = Verdict()
    with psycopg.connect(database_url_for_tests()) as conn:
        check_orders(conn, history, verdict)
        check_stock(conn, verdict)
        verdict.projection = len(projection_differences(conn))
    return verdict


def test_the_history_checks_find_each_violation(pipeline, make_product):
    make_product("A", stock=3)
    pipeline.start()
    orders = [order_place(email=EMAIL, lines=[Line("A", 2)]) for _ in range(2)]  # one confirmed, one rejected
    wait_for(lambda: not Order.objects.filter(status=Order.Status.PENDING).exists(), 60, "both orders decided")
    history = told(orders)
    with psycopg.connect(database_url_for_tests()) as conn:
        wait_for(lambda: not projection_differences(conn), 30, "the projection to catch up")
    assert verdict_of(history).ok
    pipeline.stop()  # nothing moves from here on: each change below stays as made

    # An order the client was told accepted that the shop does not have: lost.
    history.attempts.append(Attempt("ghost", [], time.time(), ids={str(uuid.uuid4())}, accepted_at=time.time()))
    # An order of the phase no 202 named: unexpected.
    order_place(email=EMAIL, lines=[Line("A", 1)])
    # A second decision for a decided order: doubled.
    first = StoredEvent.objects.filter(type="StockReserved").get()
    decision = json.loads(bytes(first.payload))
    StoredEvent.objects.create(
        **{f: getattr(first, f) for f in ("type", "version", "subject", "aggregate_id", "correlation_id")},
        event_id=uuid.uuid4(),
        occurred_at=timezone.now(),
        payload=json.dumps({**decision, "event_id": str(uuid.uuid4())}).encode(),
    )
    # Stock held that no confirmed order asked for: not conserved, and the projection differs. (More held than
    # there is, an oversell, the database refuses itself: the CHECK constraint of inventory.models.)
    StockItem.objects.filter(sku="A").update(reserved=3)

    verdict = verdict_of(history)
    assert (verdict.lost, verdict.doubled, verdict.unexpected) == (1, 1, 1)
    assert (verdict.oversold, verdict.unconserved, verdict.projection) == (0, 1, 1)
    assert not verdict.ok


def test_the_faults_option_names_only_faults_of_the_catalogue():
    assert parse(["--faults", "worker,nats-node"]).faults == ["worker", "nats-node"]
    with pytest.raises(SystemExit):
        parse(["--faults", "worker,meteor"])


def test_the_docs_block_replaces_only_its_own_markers(tmp_path):
    docs = tmp_path / "reliability.md"
    docs.write_text(f"# Reliability\n\nprose\n\n{DOCS_BEGIN}\nold table\n{DOCS_END}\n\nmore prose\n")
    write_docs(docs, f"{DOCS_BEGIN}\nnew table\n{DOCS_END}")
    assert docs.read_text() == f"# Reliability\n\nprose\n\n{DOCS_BEGIN}\nnew table\n{DOCS_END}\n\nmore prose\n"


def on_data(folder: str) -> list[int]:
    """Return the live processes whose command line names ``folder`` (the servers of a devstack run there)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            pid = int(cmdline.parent.name)
            if folder in cmdline.read_text() and alive(pid):
                found.append(pid)
        except (OSError, ValueError):
            continue  # exited while we looked
    return found


def test_a_short_chaos_run_of_two_faults_passes_and_writes_its_report(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NATS_URL")}
    docs = tmp_path / "reliability.md"
    command = [sys.executable, "-m", "loadtests.chaos", "--faults", "worker,duplicates", "--seconds", "5"]
    done = subprocess.run(
        [*command, "--docs", str(docs), "--log-dir", str(tmp_path / "logs")],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=parent_death_signal(signal.SIGTERM),
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "every check held" in done.stdout

    block = docs.read_text().split(DOCS_BEGIN, 1)[1].split(DOCS_END, 1)[0]
    assert "2 of 2 faults survived" in block
    cells = [line.split(" | ") for line in block.splitlines() if line.startswith("| ") and " s | " in line]
    rows = {row[0].strip("| "): row for row in cells}
    assert set(rows) == {"worker kill -9", "100 events delivered twice"}
    for cells in rows.values():
        accepted, of = re.match(r"(\d+) of (\d+)", cells[2]).groups()
        assert int(accepted) == int(of) > 0  # every order of the load accepted
        assert cells[4] == "yes"  # recovered
        assert cells[7:12] == ["0"] * 5  # lost, doubled, unexpected, stuck, oversold
        assert cells[12:14] == ["yes", "yes |"]  # stock conserved, projection = replay
    tried = int(re.search(r"\*\*(\d+) tried\*\*", block).group(1))
    assert f"{tried} answered 4xx, 0 5xx, 0 accepted, 0 orders created" in block and tried >= 50

    # The devstack it started was stopped by its PID, and nothing that runs on its data is left.
    pid = int(re.search(r"devstack starting \(.*pid (\d+);", done.stdout).group(1))
    assert f"devstack stopped (pid {pid})" in done.stdout
    assert not alive(pid)
    wait_for(lambda: not on_data(str(tmp_path)), 30, "every server of the devstack to exit")
