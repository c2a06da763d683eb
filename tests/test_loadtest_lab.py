"""The performance lab's code paths on a tiny size: it runs, and writes its figures, tables and plots.

It asserts nothing about speed (the figures of a 2-core machine shared with
other work mean little at this size): only that every part ran and wrote
what it should. The lab runs with fresh embedded servers of its own
(``python -m devstack.embedded``), as ``make bench`` runs it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from devstack.process import parent_death_signal
from tests.pipeline import BASE_DIR

pytestmark = pytest.mark.pipeline


def run_bench(bench: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``python -m loadtests.bench`` (``bench``: its command line) on embedded servers; assert it succeeded."""
    done = subprocess.run(
        [sys.executable, "-m", "devstack.embedded", "--", *bench],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=parent_death_signal(signal.SIGTERM),
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done


def test_a_tiny_lab_run_writes_its_tables_plots_and_json(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NATS_URL")}
    bench = [
        sys.executable,
        "-m",
        "loadtests.bench",
        "--quick",
        "--no-docs",
        "--rounds",
        "2",
        "--orders",
        "30",
        "--concurrency",
        "4",
        "--scenarios",
        "baseline,acceptance-only,batch-1",
        "--ladder",
        "baseline,batch-1",
        "--ladder-start",
        "5",
        "--ladder-steps",
        "2",
        "--ladder-seconds",
        "1",
        "--ceiling-seconds",
        "1",
        "--js-messages",
        "200",
        "--results",
        str(tmp_path),
    ]
    done = run_bench(bench, env)
    assert "rate limits: off (RATE_LIMITS=0, the lab's stack)" in done.stdout

    (result,) = tmp_path.glob("*.json")
    data = json.loads(result.read_text())
    assert [s["name"] for s in data["scenarios"]] == ["baseline", "acceptance-only", "batch-1"]
    for scenario in data["scenarios"]:
        assert scenario["accepted"] == 30 and scenario["errors"] == 0 and scenario["not_final"] == 0
        assert len(scenario["round_rates"]) == 2
    assert data["scenarios"][2]["env"] == {"EVENT_BATCH_SIZE": "1"}
    # The backlog left by acceptance-only is drained by the pipeline, and what that cost is measured.
    drained = data["scenarios"][1]
    assert drained["drain_per_s"] > 0 and drained["drain_cpu_ms"]["workers"] > 0
    assert data["scenarios"][0]["drain_cpu_ms"] == {}
    assert [ladder["scenario"] for ladder in data["ladders"]] == ["baseline", "batch-1"]
    for ladder in data["ladders"]:
        assert 1 <= len(ladder["steps"]) <= 2 and ladder["stopped_because"]
    assert data["ceilings"]["pg_orders_per_s"] > 0, data["ceilings"]["pg_note"]
    assert data["ceilings"]["js_publish_per_s"] > 0 and data["ceilings"]["js_consume_per_s"] > 0
    assert [r["name"] for r in data["reads"]] == ["near-cache", "database"]
    for variant in data["reads"]:
        assert variant["requests"] == 30 and variant["errors"] == 0 and variant["per_s"] > 0
    assert data["reads"][1]["env"] == {"LIVE_FEED": "0"}

    folder = tmp_path / result.stem
    for plot in ("scenarios.png", "ladder.png", "ceilings.png", "reads.png"):
        assert (folder / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
    section = (folder / "benchmarks.md").read_text()
    assert "| baseline |" in section and "| batch-1 | EVENT_BATCH_SIZE=1 |" in section
    assert "The baseline's 2 rounds ran at" in section
    assert "| acceptance-only |" in section.split("Where the time goes")[1] and "draining it cost" in section
    assert "### Saturation ladder (baseline)" in section and "### Saturation ladder (batch-1)" in section
    assert "### The knee of each lever" in section and "| batch-1 |" in section.split("knee of each lever")[1]
    assert "### Physical ceilings" in section
    assert "### Stock read path: near cache or database" in section and "(reads.png)" in section


def test_the_ladder_climbs_in_every_lever_by_default_and_in_the_baseline_alone_when_quick():
    from loadtests.bench.__main__ import LADDER_NAMES, parse_args

    levers = [
        "baseline",
        "batch-10",
        "batch-1",
        "workers-2",
        "relay-only",
        "relay-notify",
        "relay-eager",
        "fetch-linger",
        "server-binding",
        "linger-off",
        "gc-unfrozen",
        "publisher-thread",
        "handoff-off",
    ]
    assert parse_args([]).ladder == LADDER_NAMES == levers
    assert parse_args(["--quick", "--ladder-start", "5"]).ladder == ["baseline"]
    assert parse_args(["--quick", "--ladder", "batch-1"]).ladder == ["batch-1"]
    assert parse_args(["--ladder", ""]).ladder == []
    with pytest.raises(SystemExit):
        parse_args(["--ladder", "service"])  # no HTTP: nothing to pace


@pytest.mark.django_db
def test_the_command_line_names_every_scenario_of_the_lab():
    from loadtests.bench.__main__ import LADDER_NAMES, SCENARIO_NAMES
    from loadtests.bench.scenarios import SCENARIOS

    assert [s.name for s in SCENARIOS] == SCENARIO_NAMES
    assert set(LADDER_NAMES) == set(SCENARIO_NAMES) - {"service", "acceptance-only"}
