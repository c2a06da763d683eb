"""The live-latency script's arithmetic (loadtests/live_latency.py): frames read, percentiles, the table.

Pure functions: no servers, no database.
"""

from __future__ import annotations

import json

from loadtests.live_latency import frame_level, percentile, report


def test_a_level_frame_gives_its_sku_and_version_and_an_error_frame_none():
    level = {"sku": "LAT-1", "available": 3, "stock_status": "low_stock", "version": 7}
    assert frame_level(json.dumps(level)) == ("LAT-1", 7)
    assert frame_level(json.dumps({"error": {"code": "too_many", "message": "at most 100 SKUs"}})) is None


def test_percentile_is_the_nearest_rank():
    values = [float(v) for v in range(100, 0, -1)]  # 100 … 1, unsorted on purpose
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile(values, 0.0) == 1
    assert percentile([4.2], 0.99) == 4.2


def test_report_gives_each_path_in_milliseconds_and_counts_the_frames():
    seen = {
        ("LAT-1", 2): {"occurred": 10.000, "published": 10.010, "frames": [10.012, 10.014]},
        ("LAT-2", 2): {"occurred": 20.000, "published": 20.020, "frames": [20.030]},
        ("LAT-1", 1): {"frames": [5.0]},  # a frame whose event the script did not hear on NATS
    }
    lines = report(seen, expected_frames=6).splitlines()
    assert lines[0] == "frames received: 4 of 6"
    assert lines[2] == "| path | p50 ms | p99 ms | max ms | mean ms |"
    assert lines[4] == "| relay publish → websocket frame | 4.0 | 10.0 | 10.0 | 5.3 |"
    assert lines[5] == "| event recorded → websocket frame | 14.0 | 30.0 | 30.0 | 18.7 |"
    assert len(lines) == 6
