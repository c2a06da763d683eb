"""A process's publisher is connected before its first commit: the first events never wait for a connection."""

from events import publisher
from tests.pipeline import wait_for


def test_enabling_publish_after_commit_connects_at_once(settings, nats_url, monkeypatch):
    settings.EVENT_PUBLISH_AFTER_COMMIT = True
    monkeypatch.setattr(publisher, "_publisher", None)
    monkeypatch.setattr(publisher, "_name", None)
    publisher.enable("starting")
    started = publisher._publisher
    try:
        # No event was committed, nothing submitted: the connection is there all the same.
        assert started is not None and started.name == "starting"
        wait_for(lambda: started._nc is not None and started._nc.is_connected, 30, "the publisher's NATS connection")
        assert publisher.current() is started
    finally:
        started.close()


def test_with_publish_after_commit_off_nothing_starts(settings, monkeypatch):
    settings.EVENT_PUBLISH_AFTER_COMMIT = False
    monkeypatch.setattr(publisher, "_publisher", None)
    publisher.enable("off")
    assert publisher._publisher is None and publisher.current() is None
