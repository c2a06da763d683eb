"""The lab's comparison (``--compare``): its options, its two steps on a real pipeline, its table and docs block.

Like the rest of the lab, it asserts nothing about speed: only that every
order sent is accounted for (accepted, decided, read back) and that the
report says what was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import httpx
import pytest
from django.contrib.auth import get_user_model

from accounts.tokens import token_issue
from inventory.models import StockItem
from loadtests.bench.compare import report
from loadtests.bench.compare.run import DEVSTACK, LAB, System
from loadtests.bench.compare.steps import Step, closed_step, open_step, parse_order
from loadtests.bench.compare.targets import Target, catalog, choose, top_up
from loadtests.bench.report import DOCS_BEGIN, DOCS_END, write_docs
from tests.pipeline import run_async, wait_for
from tests.test_loadtest_lab import run_bench


def parse(*argv: str) -> argparse.Namespace:
    from loadtests.bench.__main__ import parse_args

    return parse_args(list(argv))


def test_the_comparison_options_name_each_system_and_its_token():
    args = parse("--compare-only", "--against", "sync=http://127.0.0.1:8310", "--against-token", "sync=SECRET")
    assert args.compare and args.compare_only and not args.devstack
    assert args.against == [("sync", "http://127.0.0.1:8310")] and args.against_token == [("sync", "SECRET")]
    assert (args.open_rate, args.open_seconds, args.orders, args.concurrency) == (80.0, 20.0, 2000, 32)
    assert "SECRET" not in args.command and "sync=…" in args.command  # the command goes into the docs
    assert not parse().compare and parse("--compare", "--devstack").devstack


@pytest.mark.parametrize(
    "argv",
    [
        ["--against", "sync=http://127.0.0.1:8310"],  # neither --compare nor --compare-only
        ["--devstack"],
        ["--compare", "--against", "no-url"],
        ["--compare", "--against", "a=http://x:1", "--against", "a=http://y:2"],
        ["--compare", "--against", f"{LAB}=http://x:1"],
        ["--compare", "--against", f"{DEVSTACK}=http://x:1"],
        ["--compare", "--against", "a=http://x:1", "--against-token", "b=T"],
        ["--compare", "--open-rate", "0"],
    ],
)
def test_a_comparison_option_that_cannot_work_is_refused(argv):
    with pytest.raises(SystemExit):
        parse(*argv)


def test_an_order_of_either_contract_shape_gives_its_final_time():
    project = {
        "status": "confirmed",
        "created_at": "2026-12-03T10:00:00.000000+00:00",
        "timeline": [
            {"type": "OrderPlaced", "at": "2026-12-03T10:00:00.000000+00:00", "detail": ""},
            {"type": "StockReserved", "at": "2026-12-03T10:00:00.004000+00:00", "detail": ""},
            {"type": "OrderConfirmed", "at": "2026-12-03T10:00:00.010000+00:00", "detail": ""},
        ],
    }
    peer = {
        "status": "rejected",
        "created_at": "2026-12-03T10:00:00.000000+00:00",
        "timeline": [
            {"type": "placed", "at": "2026-12-03T10:00:00.000000+00:00"},
            {"type": "rejected", "at": "2026-12-03T10:00:00.002000+00:00"},
        ],
    }
    pending = {**project, "status": "pending", "timeline": project["timeline"][:2]}
    assert round(parse_order(project).final_at - parse_order(project).created_at, 6) == 0.010
    assert round(parse_order(peer).final_at - parse_order(peer).created_at, 6) == 0.002
    assert parse_order(peer).status == "rejected" and parse_order(pending).final_at is None


@pytest.mark.pipeline
def test_both_steps_account_for_every_order_of_a_real_pipeline(pipeline, make_product):
    for sku in ("CMP-1", "CMP-2", "CMP-3"):
        make_product(sku, stock=4)
    get_user_model().objects.create_user("stocker", is_staff=True)
    pipeline.start()
    base = pipeline.web()
    wait_for(lambda: httpx.get(f"{base}/api/products/CMP-3").json()["available"] == 4, message="the projection")
    target = Target("here", base, "test pipeline", token_issue(username="stocker"))

    products = run_async(catalog(target))
    assert products == {"CMP-1": 4, "CMP-2": 4, "CMP-3": 4}
    skus = choose(products)
    assert run_async(top_up(Target("here", base, "test pipeline"), products, skus, 40))  # no token: a warning
    assert run_async(top_up(target, products, skus, 40)) == []
    assert {i.sku: i.on_hand for i in StockItem.objects.all()} == {"CMP-1": 40, "CMP-2": 40, "CMP-3": 40}

    closed = run_async(closed_step(target.address, skus, "closed@example.org", 12, 3, timeout=60))
    assert (closed.accepted, closed.errors, closed.confirmed, closed.not_final) == (12, 0, 12, 0)
    assert closed.confirmed_per_s > 0 and closed.p99_ms is not None

    opened = run_async(open_step(target.address, skus, "open@example.org", rate=5, seconds=2, timeout=60))
    assert (opened.orders, opened.accepted, opened.errors, opened.not_final) == (10, 10, 0, 0)
    assert opened.confirmed == 10 and opened.rate == 5
    assert opened.p50_ms <= opened.p90_ms <= opened.p99_ms <= opened.max_ms


@pytest.mark.pipeline
def test_compare_only_measures_the_lab_stack_and_another_server_and_writes_its_report(pipeline, make_product, tmp_path):
    make_product("CMP-9", stock=200)
    pipeline.start()
    base = pipeline.web()
    wait_for(lambda: httpx.get(f"{base}/api/products/CMP-9").json()["available"] == 200, message="the projection")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NATS_URL")}
    bench = [sys.executable, "-m", "loadtests.bench", "--compare-only", "--no-docs", "--orders", "20"]
    bench += ["--concurrency", "4", "--open-rate", "5", "--open-seconds", "2", "--against", f"here={base}"]
    run_bench([*bench, "--results", str(tmp_path)], env)

    (result,) = tmp_path.glob("*-compare.json")
    data = json.loads(result.read_text())
    assert [s["name"] for s in data["systems"]] == [LAB, "here"]
    for system in data["systems"]:
        assert system["closed"]["confirmed"] == 20 and system["open"]["confirmed"] == 10, system
        assert system["closed"]["not_final"] == system["open"]["not_final"] == 0
    assert not list(tmp_path.glob("*[0-9].json"))  # the lab's own JSON: no lab run
    section = result.with_suffix(".md").read_text()
    assert f"| {LAB} | lab stack | " in section and f"| here | {base} | " in section
    # the project's own open-loop orders, hop by hop from the event tables (only the lab's database is the bench's)
    hops = data["systems"][0]["hops"]
    assert list(hops) == ["bus (placed)", "inventory", "bus (reserved)", "shop"] and data["systems"][1]["hops"] is None
    assert all(0 <= p50 <= p99 for p50, p99 in hops.values()) and sum(p50 for p50, _ in hops.values()) > 0
    assert f"{LAB}, open loop, where the time went" in section
    assert (tmp_path / result.stem.removesuffix("-compare") / "compare.png").exists()


def _step(kind: str, rate_per_s: float | None, p50: float, not_final: int = 0) -> Step:
    return Step(
        kind=kind,
        orders=100,
        accepted=100,
        errors=0,
        confirmed=100 - not_final,
        rejected=0,
        not_final=not_final,
        load_seconds=1.0,
        rate=80.0 if kind == "open" else None,
        confirmed_per_s=rate_per_s,
        p50_ms=p50,
        p90_ms=p50 * 2,
        p99_ms=p50 * 3,
        max_ms=p50 * 4,
    )


def systems() -> list[System]:
    return [
        System(LAB, "lab stack", "http://127.0.0.1:1", _step("closed", 200.0, 50), _step("open", None, 20)),
        System("sync", "http://127.0.0.1:8310", "http://127.0.0.1:8310", _step("closed", 400.0, 5), None),
        System("slow", "http://127.0.0.1:9", "http://127.0.0.1:9", None, _step("open", None, 40, not_final=3)),
    ]


def test_the_table_gives_each_figure_with_its_ratio_to_the_lab_stack():
    table = report.table(systems())
    rows = table.splitlines()
    assert "open loop at 80/s: p50 ms" in rows[0] and len(rows) == 5
    assert rows[2].startswith(f"| {LAB} | lab stack | 200 (x1.00) |") and "| 20.0 (x1.00) |" in rows[2]
    assert "| 400 (x2.00) |" in rows[3] and "| – | – | – | – |" in rows[3]  # no open-loop step
    assert "| 40.0 (x2.00) | 80.0 (x2.00) | 120 (x2.00) | 160 (x2.00) | – / 3 |" in rows[4]


def test_the_docs_block_replaces_only_its_own_markers(tmp_path):
    info = {"nproc": 2, "cpu": "test", "python": "3", "postgresql": "18", "nats_server": "2", "packages": {}}
    options = {"date": "today", "command": "make bench", "orders": 100, "concurrency": 4}
    options |= {"open_rate": 80.0, "open_seconds": 20.0}
    section = report.markdown(info, options, systems(), "benchmarks/compare.png")
    assert section.startswith(report.DOCS_BEGIN) and section.endswith(report.DOCS_END)
    assert "slow, open loop: 3 accepted orders not final" in section and "(benchmarks/compare.png)" in section
    docs = tmp_path / "benchmarks.md"
    lab = f"{DOCS_BEGIN}\nthe lab\n{DOCS_END}"
    docs.write_text(f"# B\n\n{lab}\n\n## Side by side\n\n{report.DOCS_BEGIN}\nold\n{report.DOCS_END}\n\nhand-written\n")
    write_docs(docs, section, report.DOCS_BEGIN, report.DOCS_END)
    text = docs.read_text()
    assert lab in text and "old" not in text and section in text and text.endswith("hand-written\n")

    png = report.plot(systems(), tmp_path / "compare.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
