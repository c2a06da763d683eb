"""The metrics of every process, merged from their files: a file still being created fails no scrape."""

from prometheus_client import generate_latest
from prometheus_client.values import MultiProcessValue

from events import metrics


def test_a_samples_file_still_empty_is_left_for_the_next_scrape(tmp_path, monkeypatch):
    # Given the shared folder of two processes: one has counted, the other has only just created its file
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    value = MultiProcessValue(process_identifier=lambda: 4242)("counter", "demo_total", "demo_total", (), (), "Demo.")
    value.inc(3)
    (tmp_path / "counter_4343.db").touch()
    # When the registry of every process is read
    text = generate_latest(metrics.registry(database=False)).decode()
    # Then the counted samples are there and the empty file made no error
    assert "demo_total 3.0" in text
